"""Runtime security monitoring: gVisor trace points from every sandbox, turned into security
events by rules that are data (``rules.yaml``)."""
