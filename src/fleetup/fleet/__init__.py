"""The registry: customers, their sites, and the machines at those sites."""
