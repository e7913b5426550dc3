"""The mixer view's browser-test host (see harness/) and what its tests share."""
