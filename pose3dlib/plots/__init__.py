"""Figures: matplotlib and plotly skeletons, training curves and the training notebooks' shared body."""
