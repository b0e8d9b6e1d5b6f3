namespace Loop.Store.Tests;

using Dapper;
using Loop.Testing;
using Microsoft.Data.Sqlite;
using Npgsql;

/// <summary>A clock the test moves by hand.</summary>
public sealed class ManualTime(DateTimeOffset start) : TimeProvider
{
    private DateTimeOffset _now = start;

    public override DateTimeOffset GetUtcNow() => _now;

    public void Advance(TimeSpan by) => _now += by;
}

/// <summary>A fresh directory with a database path in it, removed afterwards.</summary>
public sealed class TempDatabase : IDisposable
{
    public TempDatabase()
    {
        Root = Path.Combine(Path.GetTempPath(), "loop-store-tests", Guid.NewGuid().ToString("N"));
        // The store creates the database's directory itself, so it is not made here.
        DatabasePath = Path.Combine(Root, "state", "loop.db");
    }

    public string Root { get; }

    public string DatabasePath { get; }

    public void Dispose()
    {
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
    }
}

/// <summary>Where a store test's database lives: the contract tests run once on each. Every
/// <see cref="OpenAsync"/> opens a new store object on the same, migrated database.</summary>
public abstract class StoreBackend : IAsyncDisposable
{
    private readonly List<SqlLoopStore> _opened = [];

    /// <summary>A fresh directory for the tests' project directories.</summary>
    public string Root { get; } = Path.Combine(Path.GetTempPath(), "loop-store-tests", Guid.NewGuid().ToString("N"));

    /// <param name="node">The node the store object serves, as each node of a cluster has its own.</param>
    public async Task<SqlLoopStore> OpenAsync(TimeProvider time, string? node = null)
    {
        var store = await CreateAsync(time, node);
        _opened.Add(store);
        await store.MigrateAsync(CancellationToken.None);
        return store;
    }

    /// <summary>The first column of each row <paramref name="sql"/> returns, read past the store.</summary>
    public abstract Task<IReadOnlyList<T>> ReadColumnAsync<T>(string sql);

    protected abstract Task<SqlLoopStore> CreateAsync(TimeProvider time, string? node);

    /// <summary>Another database of the same kind.</summary>
    public abstract StoreBackend Another();

    public virtual async ValueTask DisposeAsync()
    {
        foreach (var store in _opened)
        {
            await store.DisposeAsync();
        }
        if (Directory.Exists(Root))
        {
            Directory.Delete(Root, recursive: true);
        }
        GC.SuppressFinalize(this);
    }
}

public sealed class SqliteBackend : StoreBackend
{
    public string DatabasePath => Path.Combine(Root, "state", "loop.db");

    protected override Task<SqlLoopStore> CreateAsync(TimeProvider time, string? node) =>
        Task.FromResult<SqlLoopStore>(new SqliteLoopStore(DatabasePath, time) { Node = node });

    public override StoreBackend Another() => new SqliteBackend();

    public override async Task<IReadOnlyList<T>> ReadColumnAsync<T>(string sql)
    {
        await using var connection = new SqliteConnection($"Data Source={DatabasePath};Pooling=False");
        return (await connection.QueryAsync<T>(sql)).ToList();
    }
}

/// <summary>A database of its own on the test run's PostgreSQL server.</summary>
public sealed class PostgresBackend : StoreBackend
{
    private string? _connectionString;

    private async Task<string> ConnectionStringAsync() =>
        _connectionString ??= await (await PostgresServer.SharedAsync()).CreateDatabaseAsync();

    protected override async Task<SqlLoopStore> CreateAsync(TimeProvider time, string? node) =>
        new PostgresLoopStore(await ConnectionStringAsync(), time) { Node = node };

    public override StoreBackend Another() => new PostgresBackend();

    public override async Task<IReadOnlyList<T>> ReadColumnAsync<T>(string sql)
    {
        await using var connection = new NpgsqlConnection(await ConnectionStringAsync());
        return (await connection.QueryAsync<T>(sql)).ToList();
    }
}
