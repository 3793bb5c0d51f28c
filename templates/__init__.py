"""Jinja2 templates shipped inside the installed package as `shim.templates`."""
