"""Training of the Mask / No Mask classifier and the data tools that feed it."""
