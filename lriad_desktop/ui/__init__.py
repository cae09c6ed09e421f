"""Qt widgets of the inspector's desktop app; they call core through a controller and one task API."""
