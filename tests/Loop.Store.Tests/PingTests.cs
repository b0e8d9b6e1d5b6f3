namespace Loop.Store.Tests;

using Loop.Domain;
using Loop.Domain.Channels;
using Microsoft.Data.Sqlite;
using Xunit;

/// <summary>The health check's probe reads the database file as it is now, so it fails when the
/// file goes away or stops being a database while the store has it open.</summary>
public sealed class PingTests : IAsyncLifetime, IDisposable
{
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly TempDatabase _db = new();
    private SqliteLoopStore _store = null!;

    public async Task InitializeAsync()
    {
        _store = new SqliteLoopStore(_db.DatabasePath, TimeProvider.System);
        await _store.MigrateAsync(None);
        // The store in use: readers pooled, the writer open, pages in the write-ahead log.
        var channel = (await _store.EnsureChannelAsync(null, null, None)).Channel;
        await _store.AppendMessageAsync(new NewMessage(channel.Id, MessageRole.User, "alice", "hello"), None);
        await _store.ListMessagesAsync(channel.Id, 0, 10, None);
    }

    public Task DisposeAsync() => Task.CompletedTask;

    public void Dispose()
    {
        _store.Dispose();
        _db.Dispose();
    }

    [Fact]
    public async Task Ping_answers_while_the_database_is_there()
    {
        await _store.PingAsync(None);
        await _store.PingAsync(None);
    }

    [Fact]
    public async Task Ping_fails_once_the_database_file_is_deleted()
    {
        await _store.PingAsync(None);

        File.Delete(_db.DatabasePath);

        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => _store.PingAsync(None));
        Assert.Equal("the database file is gone (deleted or moved while loop serve runs)", error.Message);
        Assert.False(File.Exists(_db.DatabasePath));
    }

    [Fact]
    public async Task Ping_fails_once_the_database_file_is_overwritten_with_garbage()
    {
        await _store.PingAsync(None);
        // Copied back into the file, as the store's own checkpoints do within a second: until then
        // SQLite reads the newest pages from the write-ahead log, not from the file.
        CheckpointLog();

        await File.WriteAllBytesAsync(_db.DatabasePath, Enumerable.Range(0, 64 * 1024).Select(i => (byte)(i * 7 % 251)).ToArray());

        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => _store.PingAsync(None));
        Assert.Contains("not a database", error.Message);
    }

    [Fact]
    public async Task Ping_fails_once_the_database_file_is_replaced_by_an_empty_one()
    {
        await _store.PingAsync(None);

        File.Delete(_db.DatabasePath);
        await File.WriteAllBytesAsync(_db.DatabasePath, []);

        var error = await Assert.ThrowsAsync<StoreUnavailableException>(() => _store.PingAsync(None));
        Assert.Contains("no such table", error.Message);
    }

    private void CheckpointLog()
    {
        using var connection = new SqliteConnection($"Data Source={_db.DatabasePath};Pooling=False");
        connection.Open();
        using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA wal_checkpoint(TRUNCATE)";
        command.ExecuteNonQuery();
    }
}
