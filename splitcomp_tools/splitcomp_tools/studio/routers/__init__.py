"""The studio's routes, one router per resource: page (the page and /api/status), models, bundles, calibration,
classify, jobs and live. Each route reads the server's state through `state.StudioDep`."""
