"""LiMA Lens home page: what it does, the current set-up, where to go next.

Run with ``streamlit run app.py``; every file in pages/ is a page (directory-based multipage).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from explainer.sam import sam_status
from ui import page, resources, sidebar
from ui.text import md, md_message

HERO = Path(__file__).parent / "assets" / "hero.png"


def main() -> None:
    st.title("LiMA Lens")
    st.markdown(
        "**See where an image classifier is wrong, and why.** Pick a misclassified image, split it into "
        "interpretable regions (SAM masks or superpixels), and LiMA ranks the regions by how much they drive "
        "the model's belief, using nothing but the model's outputs.  \n"
        "Then step through the ranking region by region: the insertion curves of the true and the predicted class, "
        "the minimal subset of regions that is enough, heatmaps and faithfulness scores, all exportable with full "
        "provenance."
    )
    if HERO.is_file():
        st.image(
            str(HERO),
            width="stretch",
            caption="A mistake explained: EfficientNet-Lite0 calls this launch a missile. Nine regions (25 % of "
            "the image: sky and launch towers) raise p(space shuttle) from 0.06 to 0.76, while the "
            "rocket's body supports missile (vermillion). Curves: the true class in blue, the predicted "
            "one in vermillion.",
        )
    device_problem = resources.device_error()
    if device_problem:
        st.error(
            md_message(device_problem)
            + "  \nSet `LIMA_DEVICE` to `auto`, `cpu`, `cuda` or `cuda:N` and restart the server.",
            icon=":material/memory:",
        )

    ctx = sidebar.context()
    st.subheader("Current set-up")
    c1, c2, c3, c4 = st.columns(4)
    with c1.container(border=True):
        st.markdown("**Model**")
        if ctx.clf is not None:
            st.markdown(
                f"{md(ctx.clf.id)}  \n{ctx.clf.num_classes} classes · {ctx.clf.size}×{ctx.clf.size} px  \n"
                f"weights `{ctx.clf.weights_hash[:12]}…`"
            )
        else:
            st.error(md_message(ctx.clf_error))
    with c2.container(border=True):
        st.markdown("**Image set**")
        if ctx.image_set is not None:
            st.markdown(
                f"{md(ctx.image_set.name)}  \n{len(ctx.image_set)} images"
                + (f" · {len(ctx.image_set.problems)} skipped" if ctx.image_set.problems else "")
            )
        else:
            st.warning(md_message(ctx.set_error or "No image set."))
            ctx.set_error_shown()
    with c3.container(border=True):
        st.markdown("**Device**")
        st.markdown(
            md(resources.device_name())
            + (
                "  \nGPU: SAM and large searches are fast."
                if resources.on_gpu()
                else "  \nCPU: superpixel runs take seconds; SAM is slow."
            )
        )
    with c4.container(border=True):
        st.markdown("**SAM**")
        status = sam_status()
        if status.available:
            st.markdown(f"Checkpoint {md(status.checkpoint.name)} ({status.model_type or 'type read on load'})")
        else:
            st.markdown("Not available: superpixels are used.")
            with st.popover("How to add SAM"):
                st.markdown(md_message(status.reason))

    st.subheader("Where next")
    st.page_link(
        page.ERRORS_PAGE,
        label="Find errors: accuracy, top confusions, the most confidently wrong images",
        icon=":material/search:",
    )
    st.page_link(
        page.EXPLAIN_PAGE,
        label="Explain: regions, LiMA search, step through the result, export",
        icon=":material/frame_inspect:",
    )
    st.page_link(page.RUNS_PAGE, label="Saved runs: reopen or delete earlier explanations", icon=":material/history:")
    st.page_link(
        page.SCORECARD_PAGE,
        label="Scorecard: LiMA against Grad-CAM, RISE, LIME, KernelSHAP and others on the same regions",
        icon=":material/leaderboard:",
    )
    st.page_link(
        page.STUDY_PAGE,
        label="Study: stimuli, counterbalanced lists and answer key for a human study of explanations",
        icon=":material/groups:",
    )
    st.page_link(
        page.COHORTS_PAGE,
        label="Cohorts: explain every mistake of a confusion pair and look at them together",
        icon=":material/grid_view:",
    )


page.render("Home", main)
