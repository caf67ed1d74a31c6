"""probe dashboards: `make app` (streamlit run apps/Home.py). A multipage app over st.navigation; every page reads
checkpoints/ and runs/ (or $PROBE_CHECKPOINTS / $PROBE_RUNS) and trains nothing unless asked.

The page scripts live in apps/views/, not apps/pages/: Streamlit still auto-discovers a pages/ folder beside the
entry script, and a fresh server's first request to a deep link (/runs_browser) then runs that page alone, without
this file's navigation and page config (seen with Streamlit 1.67; tests/apps/test_browser.py checks deep links)."""

import streamlit as st

st.set_page_config(page_title="probe dashboards", layout="wide")

PAGES = [
    st.Page("views/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("views/model_explorer.py", title="Model explorer", icon=":material/visibility:"),
    st.Page("views/runs_browser.py", title="Runs browser", icon=":material/folder_open:"),
    st.Page("views/compare_runs.py", title="Compare runs", icon=":material/monitoring:"),
    st.Page("views/scan_snap_replay.py", title="Scan & Snap replay", icon=":material/replay:"),
    st.Page("views/training_trajectories.py", title="Training trajectories", icon=":material/timeline:"),
    st.Page("views/claims.py", title="Claims", icon=":material/fact_check:"),
    st.Page("views/sae.py", title="Sparse autoencoders", icon=":material/scatter_plot:"),
]

st.navigation(PAGES).run()
