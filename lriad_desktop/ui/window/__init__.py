"""The main window and how it is wired: the application start, the window, the controller between widgets and
core, every action declared once, getting images in and data out, the status bar, help, the demo-model notice,
and the system-library check before Qt opens a window."""
