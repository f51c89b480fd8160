"""Platform code shared by every feature; it knows no business rules."""
