"""rintik-lite: usage metering and billing for small OpenStack clouds."""

__version__ = "0.1.0"
