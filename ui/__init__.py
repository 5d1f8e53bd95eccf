"""Streamlit helpers for the LiMA Lens pages: the only code besides app.py and pages/ that
imports streamlit. The engine (explainer/) never does."""
