"""Planning and control: lane following, traffic queries, planners and controllers."""
