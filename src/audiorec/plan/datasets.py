"""What the workflow knows of one configured dataset before anything runs: its tables, downloads and options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from audiorec.datasets import GENERATED_FEATURES, dataset_tables, source_features, source_options
from audiorec.errors import ParameterError
from audiorec.plan import paths
from audiorec.protocol.split_config import with_protocol_defaults
from audiorec.storage.download import DownloadSpec, substitute_downloads

LOG_TABLE = "interactions"
"""The table of a listening log; datasets with one get the recommendation stages."""


@dataclass(frozen=True)
class DatasetPlan:
    """One entry of the config's ``datasets``, resolved: which tables its source writes, which files it fetches.

    Sources declare their outputs in :data:`audiorec.datasets.SOURCE_OUTPUTS`, so all of this is known without
    importing a source module or reading a file.
    """

    name: str
    source: str
    tables: tuple[str, ...]
    downloads: Mapping[str, DownloadSpec]
    raw_downloads: Mapping[str, Any]
    raw_options: Mapping[str, Any]
    split: Mapping[str, Any] | None

    @classmethod
    def from_entry(cls, name: str, entry: Mapping[str, Any]) -> DatasetPlan:
        """Resolve a config entry; an unknown source or a malformed download is a :class:`ParameterError`."""
        options = entry.get("options") or {}
        declared = entry.get("downloads") or {}
        folder_option = GENERATED_FEATURES.get(entry["source"])
        if folder_option is not None:
            # The source generates its features into its own data folder, a fetch output: the precomputed
            # backbones read them from there, so the option naming their location is the workflow's to set.
            if folder_option in options:
                raise ParameterError(
                    f"datasets.{name}: option {folder_option} is set by the workflow "
                    f"({paths.DATA.format(dataset=name)}/features); remove it"
                )
            options = {**options, folder_option: f"{paths.DATA.format(dataset=name)}/features"}
        try:
            tables = dataset_tables(entry["source"], options)
            downloads = {file: DownloadSpec.from_mapping(file, spec) for file, spec in declared.items()}
        except ParameterError as error:
            raise ParameterError(f"datasets.{name}: {error}") from error
        split = entry.get("split")
        return cls(
            name,
            entry["source"],
            tables,
            downloads,
            declared,
            options,
            None if split is None else with_protocol_defaults(split),
        )

    def has(self, table: str) -> bool:
        """Whether the dataset provides ``data/<table>.parquet``, e.g. ``interactions`` or ``labels/genre``."""
        return table in self.tables

    @property
    def has_log(self) -> bool:
        """Whether the dataset has a listening log (and so a split, runs and recommendation tables)."""
        return self.has(LOG_TABLE)

    @property
    def label_tables(self) -> list[str]:
        """The dataset's label tables, e.g. ``["labels/genre", "labels/instrument"]``."""
        return [table for table in self.tables if table.startswith("labels/")]

    @property
    def holds_out_tracks(self) -> bool:
        """Whether test tracks can be kept out of self-supervised training (label splits or a listening log)."""
        return bool(self.label_tables) or self.has_log

    def download_entry(self, file: str) -> Mapping[str, Any]:
        """The config block of download ``file``: a changed URL or checksum fetches the file again."""
        if file not in self.downloads:
            raise ParameterError(
                f"dataset {self.name!r} declares no download {file!r}; it declares {sorted(self.downloads)}"
            )
        return self.raw_downloads[file]

    def download_spec(self, file: str) -> DownloadSpec:
        """The validated spec of download ``file`` (see :meth:`download_entry`)."""
        self.download_entry(file)
        return self.downloads[file]

    def download_locations(self) -> dict[str, str]:
        """Where each download is used from: the unpacked folder of an archive, else the file."""
        return {
            file: (paths.EXTRACTED if spec.archive else paths.DOWNLOAD).format(dataset=self.name, file=file)
            for file, spec in self.downloads.items()
        }

    def options(self) -> dict[str, Any]:
        """The dataset's options with every ``"{download:NAME}"`` replaced by that download's location."""
        return substitute_downloads(self.raw_options, self.download_locations(), f"datasets.{self.name}.options")

    def feature_option(self, feature: str) -> str | None:
        """The option that names the file of a precomputed ``feature``, or None if the source has no such one."""
        return source_features(self.source, self.raw_options).get(feature)

    def check(self) -> None:
        """Fail on a dataset entry that cannot work; every message names the dataset.

        The source's options are built here, as a job would build them, so a typo or a bad value fails the dry
        run instead of the fetch job.
        """
        try:
            source_options(self.source, self.options())
        except ParameterError as error:
            raise ParameterError(f"datasets.{self.name}: {error}") from error
        if self.has_log and self.split is None:
            raise ParameterError(
                f"datasets.{self.name}: source {self.source!r} has a listening log, so a split (test_start, ...) "
                "is needed"
            )

    def check_feature(self, backbone: str, feature: str) -> None:
        """Fail unless the dataset provides the precomputed ``feature`` that ``backbone`` reads."""
        if not self.has(f"features/{feature}"):
            provided = sorted(source_features(self.source, self.raw_options))
            how = (
                "it generates the features its option feature_dims names"
                if self.source in GENERATED_FEATURES
                else "each when the option naming its file is set"
            )
            raise ParameterError(
                f"backbone {backbone!r} reads the precomputed feature {feature!r}, which datasets.{self.name} "
                f"(source {self.source!r}) does not provide; it provides {provided}: {how}"
            )
