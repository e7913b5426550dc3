"""apiframe's v2 API as this server needs it: read jobs, list them, submit a stems split."""

from .client import ApiframeClient
from .models import ApiJob, ApiJobPage, ApiTrack, Submission

__all__ = ["ApiJob", "ApiJobPage", "ApiTrack", "ApiframeClient", "Submission"]
