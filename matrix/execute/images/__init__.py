"""A cell's image: built from its Dockerfile, found as it is (an existing image, with what
discovery found in it), or loaded from a bundle; and the portable probe beside it."""
