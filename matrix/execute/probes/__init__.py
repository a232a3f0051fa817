"""A cell's probe runs: in one container, judged into scenario results, a crash's addresses
named from the image's objects."""
