"""The dashboard's pages, one module per section; each view parses, calls selectors or
one control, and renders."""
