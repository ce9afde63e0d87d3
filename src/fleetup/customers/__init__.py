"""The customer's side: notices, acceptance signatures, satisfaction surveys, follow-up."""
