"""The vector bin packing suite: academic VBP instances mapped to Kubernetes windows."""
