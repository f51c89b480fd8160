"""Deployment files: compose, nginx, Prometheus, Grafana, Kubernetes and the image health check."""
