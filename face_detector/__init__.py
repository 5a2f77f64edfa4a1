"""OpenCV DNN SSD face detector (res10_300x300)."""
