"""Sandbox images, built offline from Debian packages (there is no registry to pull from)."""

from crucible_ray.images.build import ImageStatus, build_image, image_tag, list_images

__all__ = ["ImageStatus", "build_image", "image_tag", "list_images"]
