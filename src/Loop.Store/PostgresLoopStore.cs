namespace Loop.Store;

using System.Data;
using System.Data.Common;
using System.Net.Sockets;
using Dapper;
using Loop.Domain;
using Npgsql;

/// <summary>The store of a cluster: one PostgreSQL database that every node reads and writes.
/// Writes run at READ COMMITTED, each statement written so that a concurrent writer cannot make it
/// wrong (conditional updates, locks where a write reads first); a write that loses a race to
/// another node's (a deadlock, a duplicate key the other just inserted) runs again and then sees
/// what the other wrote.</summary>
public sealed class PostgresLoopStore : SqlLoopStore
{
    private const int MaxWriteAttempts = 4;

    private readonly NpgsqlDataSource _dataSource;

    public PostgresLoopStore(string connectionString, TimeProvider time)
        : base(time)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(connectionString);
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        Location = $"PostgreSQL {builder.Host}:{builder.Port}/{builder.Database}";
        // The store leaves no session state behind (its locks end with their transaction), so a pooled
        // connection needs no reset, and the few statements it runs again and again are prepared once
        // per connection: without these PostgreSQL parses and plans every statement afresh, which
        // cost it more CPU than the statements themselves under a burst of task runs.
        builder.NoResetOnClose = true;
        builder.MaxAutoPrepare = 64;
        _dataSource = NpgsqlDataSource.Create(builder);
    }

    public override string Location { get; }

    protected override async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
                await using var tx = await connection.BeginTransactionAsync(cancellationToken);
                var result = await work(connection, tx);
                await tx.CommitAsync(cancellationToken);
                return result;
            }
            catch (PostgresException e) when (attempt < MaxWriteAttempts && LostARace(e))
            {
                // Rolled back as the transaction was disposed; the next attempt reads what won.
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(1, 10 * attempt)), cancellationToken);
            }
            catch (Exception e) when (Unreachable(e))
            {
                throw Unavailable(e);
            }
        }
    }

    protected override async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
            return await work(connection);
        }
        catch (Exception e) when (Unreachable(e))
        {
            throw Unavailable(e);
        }
    }

    protected override DbTransaction BeginSnapshot(DbConnection connection) =>
        connection.BeginTransaction(IsolationLevel.RepeatableRead);

    protected override Task LockAsync(DbConnection connection, DbTransaction tx, string name, CancellationToken cancellationToken) =>
        connection.ExecuteAsync(Command("SELECT pg_advisory_xact_lock(hashtext(@name))", new { name }, tx, cancellationToken));

    protected override bool IsForeignKeyViolation(DbException e) => e is PostgresException { SqlState: PostgresErrorCodes.ForeignKeyViolation };

    private protected override IReadOnlyList<Migration> Migrations => Schema.Postgres;

    protected override string ContainsSql(string haystack, string needle) => $"strpos({haystack}, {needle}) > 0";

    protected override string DayOfSql(string msColumn) => $"to_char(to_timestamp({msColumn} / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM-DD')";

    protected override string InListSql(string column, string parameter) => $"{column} = ANY({parameter})";

    protected override object ListParameter<T>(IReadOnlyCollection<T> values) => values.ToArray();

    public override async Task PingAsync(CancellationToken cancellationToken)
    {
        try
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
            await connection.ExecuteScalarAsync<string?>(Command(
                "SELECT value FROM meta WHERE key = @key", new { key = InstanceIdKey }, null, cancellationToken));
        }
        catch (Exception e) when (e is NpgsqlException || Unreachable(e))
        {
            throw Unavailable(e);
        }
    }

    /// <summary>Another node's write got in the way: its transaction deadlocked with this one, or it
    /// inserted the row (by a unique key) that this one was about to.</summary>
    private static bool LostARace(PostgresException e) =>
        e.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure or PostgresErrorCodes.UniqueViolation;

    /// <summary>The server is away (down, restarting, its name unknown, unreachable), not the statement wrong.</summary>
    private static bool Unreachable(Exception e) => e switch
    {
        PostgresException { SqlState: var state } => state.StartsWith("08", StringComparison.Ordinal) || state.StartsWith("57P", StringComparison.Ordinal),
        NpgsqlException or SocketException or TimeoutException => true,
        _ => false,
    };

    private StoreUnavailableException Unavailable(Exception e) =>
        new($"{Location} cannot be reached: {(e is PostgresException pg ? pg.MessageText : e.Message)}", e);

    public override ValueTask DisposeAsync() => _dataSource.DisposeAsync();
}
