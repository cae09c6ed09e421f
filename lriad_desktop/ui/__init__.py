"""Qt widgets of the inspector's desktop app, in rooms: `window` (start, main window, controller, actions),
`review` (queue, image, finding and review panels), `maps` (anomaly map, golden samples), `improve` (training and
versions), `dialogs`, `line`; beside them the one task API (`tasks`), the theme, image decoding and tables."""
