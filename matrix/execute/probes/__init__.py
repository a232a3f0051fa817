"""A cell's probe runs: in one container, then the follow-up runs in one more, judged into
scenario results, a crash's addresses named from the image's objects."""
