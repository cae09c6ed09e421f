"""The review loop: the queue (model and view), the image view with its boxes, the finding panel and verdict banner,
the review panel (accept, flag, correct, note), box editing, background inspection, writes to the store, and
re-inspection with the model in use."""
