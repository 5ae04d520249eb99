"""splitcomp_core: the ROS-free heart of splitcomp (codec, bundle, runtime, pre/post-processing)."""
