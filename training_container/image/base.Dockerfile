# The local, offline base for training_container/Dockerfile (BASE_IMAGE): in place of AWS's
# PyTorch training image, which cannot be pulled here. Built by build.sh, FROM the Debian
# bookworm root filesystem it made with debootstrap and imported (ROOTFS_IMAGE).
#
# What it gives the training Dockerfile is what AWS's image gives it: a `python` and `pip` on
# PATH, with torch, numpy and boto3 installed. And one thing more, so that everything after
# the training Dockerfile's FROM needs no registry: pip reads only the wheelhouse baked in here
# (PIP_NO_INDEX, PIP_FIND_LINKS), the project's pinned wheels gathered on the host, at the
# versions PIP_CONSTRAINT pins (the .venv's).
ARG ROOTFS_IMAGE
FROM ${ROOTFS_IMAGE}

# A virtual environment, not Debian's python3: Debian marks its own interpreter externally
# managed (PEP 668), so a plain `pip install`, as the training Dockerfile runs, would refuse.
RUN python3 -m venv /opt/python
ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    PIP_NO_INDEX=1 \
    PIP_FIND_LINKS=/opt/wheels \
    PIP_CONSTRAINT=/opt/wheels/constraints.txt \
    PIP_DISABLE_PIP_VERSION_CHECK=1

COPY wheels /opt/wheels
COPY base-requirements.txt constraints.txt /opt/wheels/
RUN pip install --no-cache-dir -r /opt/wheels/base-requirements.txt \
    && python -c "import torch, numpy, boto3; assert torch.version.cuda is None; print('torch', torch.__version__)"
