"""The trail: recording events, searching them, exporting them."""
