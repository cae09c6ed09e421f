"""The anomaly map and golden samples in the app: each object's bank, the heatmap layer over the image, the
golden samples the UI knows and their strip of thumbnails."""
