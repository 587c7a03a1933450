"""Build tooling that is not part of the installed package: the completion and man-page generator."""
