"""The simulator: a virtual fleet of IPCs, technicians and customers with injected faults,
speaking the real device protocol and API to a real server."""
