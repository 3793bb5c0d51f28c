"""Static data shipped inside the installed package as `shim.conf`."""
