import pyarrow as pa
import pyarrow.parquet as pq

from revisual_verl.data.sinks import ParquetSink, ValidationReservoir

SCHEMA = pa.schema([("extra_info", pa.struct([("index", pa.int64())]))])


def _draw(seed: int, rows: int, size: int) -> tuple[list[int], list[int]]:
    train: list[int] = []
    reservoir = ValidationReservoir(size, seed, lambda row: train.append(row["extra_info"]["index"]))
    for index in range(rows):
        reservoir.offer({"extra_info": {"index": index}})
    val = [row["extra_info"]["index"] for row in reservoir.finish(size)]
    return train, val


def test_the_reservoir_is_exact_seeded_and_loses_no_row():
    train, val = _draw(seed=3, rows=1000, size=50)
    assert len(val) == 50 and val == sorted(val)
    assert sorted(train + val) == list(range(1000))
    assert _draw(seed=3, rows=1000, size=50) == (train, val)
    assert _draw(seed=4, rows=1000, size=50)[1] != val


def test_the_reservoir_samples_uniformly():
    hits = [0] * 10
    for seed in range(400):
        for index in _draw(seed, rows=10, size=2)[1]:
            hits[index] += 1
    # Each row is picked with probability 0.2: 80 times in 400 draws; late rows must not be favoured.
    assert all(50 < count < 110 for count in hits), hits


def test_finish_returns_rows_beyond_keep_to_train():
    train, val = [], None
    reservoir = ValidationReservoir(8, 0, lambda row: train.append(row["extra_info"]["index"]))
    for index in range(6):
        reservoir.offer({"extra_info": {"index": index}})
    val = [row["extra_info"]["index"] for row in reservoir.finish(3)]
    assert val == [0, 1, 2] and train == [3, 4, 5]


def test_sink_shards_by_rows_and_writes_an_empty_file_when_given_nothing(tmp_path):
    sink = ParquetSink(tmp_path, "train", SCHEMA, shard_rows=4)
    for index in range(10):
        sink.write({"extra_info": {"index": index}})
    sink.close()
    assert sink.files == ["train-00000.parquet", "train-00001.parquet", "train-00002.parquet"]
    read = [pq.read_table(tmp_path / name).column("extra_info").to_pylist() for name in sink.files]
    assert [len(part) for part in read] == [4, 4, 2]
    assert [row["index"] for part in read for row in part] == list(range(10))

    empty = ParquetSink(tmp_path, "val", SCHEMA)
    empty.close()
    assert empty.files == ["val.parquet"] and pq.read_table(tmp_path / "val.parquet").num_rows == 0
