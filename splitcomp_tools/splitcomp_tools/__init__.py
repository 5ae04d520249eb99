"""splitcomp_tools: offline tools (export, analyze, split, calibrate, bench, demo) and helper nodes."""
