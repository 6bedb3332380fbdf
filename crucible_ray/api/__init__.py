"""The HTTP API: a FastAPI app deployed on Ray Serve (see app.py and deployment.py)."""
