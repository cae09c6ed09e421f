"""The anomaly map: memory banks of patch features of an object's good images, the nearest-neighbour distance
of every cell of a new image (the heatmap, its regions and its score), registration onto the bank's reference
image, fusion with the model's P(anomalous), and the map stage that runs beside each inspection. Uses the store
(golden samples), `core.backends` (tower features) and `core.inspection`."""
