namespace Loop.Store;

using System.Data.Common;
using System.Text.Json;
using Dapper;
using Loop.Domain;
using Microsoft.Data.Sqlite;

/// <summary>The store on one node: a SQLite file in WAL mode. Writes go through one connection, one
/// at a time, so callers never meet SQLITE_BUSY; reads use their own pooled connections and run
/// alongside the writer.</summary>
/// <remarks>synchronous=NORMAL in WAL mode survives a crash of this process (the OS holds the
/// written pages); only a power loss can drop the last commits.</remarks>
public sealed partial class SqliteLoopStore : SqlLoopStore, IDisposable
{
    private const int BusyTimeoutMs = 5000;

    private readonly string _connectionString;
    private readonly string _probeConnectionString;
    private readonly SqliteConnection _writer;
    private readonly SemaphoreSlim _writeGate = new(1, 1);
    private static readonly TimeSpan CheckpointEvery = TimeSpan.FromSeconds(1);
    private readonly ITimer _checkpoints;
    private int _checkpointing;
    private bool _disposed;

    public SqliteLoopStore(string databasePath, TimeProvider time)
        : base(time)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(databasePath);

        var fullPath = Path.GetFullPath(databasePath);
        Directory.CreateDirectory(Path.GetDirectoryName(fullPath)!);
        KeepPrivate(fullPath);
        DatabasePath = fullPath;
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = fullPath,
            // Made above (where it can be): a connection opened after the file was deleted must fail, not
            // make a new empty database that the daemon would go on with.
            Mode = File.Exists(fullPath) ? SqliteOpenMode.ReadWrite : SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            ForeignKeys = true,
            Pooling = true,
            // Also how long a command waits out SQLITE_BUSY before failing.
            DefaultTimeout = BusyTimeoutMs / 1000,
        }.ToString();
        _probeConnectionString = new SqliteConnectionStringBuilder(_connectionString)
        {
            Mode = SqliteOpenMode.ReadWrite,
            Pooling = false,
        }.ToString();

        // Opened here so the file exists and is in WAL mode before any reader opens it.
        _writer = Open();
        // No automatic checkpoints: SQLite runs them inside whichever commit crosses the threshold,
        // which then takes milliseconds. A timer checkpoints in the background instead.
        Execute(_writer, $"PRAGMA journal_mode = WAL; PRAGMA busy_timeout = {BusyTimeoutMs}; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;");
        _checkpoints = time.CreateTimer(_ => Checkpoint(), null, CheckpointEvery, CheckpointEvery);
    }

    /// <summary>Makes the database and its -wal and -shm files readable only by their owner (0600):
    /// they hold the conversations. SQLite gives the -wal and -shm files it creates the database
    /// file's mode, so creating that one private is enough for new stores; older ones are tightened.</summary>
    private static void KeepPrivate(string databasePath)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            // An empty file is an empty SQLite database.
            using var created = new FileStream(databasePath, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = Private });
        }
        catch (IOException) when (File.Exists(databasePath))
        {
            // It exists already.
        }
        foreach (var file in new[] { databasePath, databasePath + "-wal", databasePath + "-shm" })
        {
            if (File.Exists(file) && (File.GetUnixFileMode(file) & ~Private) != 0)
            {
                File.SetUnixFileMode(file, Private);
            }
        }
    }

    /// <summary>Copies the write-ahead log back into the database without blocking writers or
    /// readers (PASSIVE), off the write path.</summary>
    private void Checkpoint()
    {
        if (_disposed || Interlocked.Exchange(ref _checkpointing, 1) == 1)
        {
            return;
        }
        try
        {
            using var connection = Open();
            Execute(connection, "PRAGMA wal_checkpoint(PASSIVE);");
        }
        catch (SqliteException)
        {
            // Busy or closing: the next tick tries again.
        }
        finally
        {
            Interlocked.Exchange(ref _checkpointing, 0);
        }
    }

    /// <summary>The full path of the database file.</summary>
    public string DatabasePath { get; }

    public override string Location => DatabasePath;

    public override async Task PingAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            // A connection of its own: a pooled one keeps reading the file it opened after that file
            // is deleted or replaced, and one that may create the file would make a new empty database.
            await using var connection = new SqliteConnection(_probeConnectionString);
            await connection.OpenAsync(cancellationToken);
            // Reads the header, the schema and a table of Loop's: what any request needs first.
            await connection.ExecuteScalarAsync<string?>(Command(
                "SELECT value FROM meta WHERE key = @key", new { key = InstanceIdKey }, null, cancellationToken));
        }
        catch (SqliteException e)
        {
            throw new StoreUnavailableException(File.Exists(DatabasePath) ? e.Message : "the database file is gone (deleted or moved while loop serve runs)", e);
        }
    }

    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }
        _disposed = true;
        _checkpoints.Dispose();
        // Taking the gate lets a write in flight finish before its connection goes away.
        _writeGate.Wait();
        try
        {
            Execute(_writer, "PRAGMA wal_checkpoint(TRUNCATE);");
            _writer.Dispose();
            // Pooled readers would otherwise keep the file open after the store is gone.
            using var forPool = new SqliteConnection(_connectionString);
            SqliteConnection.ClearPool(forPool);
        }
        finally
        {
            _writeGate.Release();
        }
    }

    public override ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }


    protected override async Task<T> WriteAsync<T>(Func<DbConnection, DbTransaction, Task<T>> work, CancellationToken cancellationToken)
    {
        await _writeGate.WaitAsync(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            // BEGIN IMMEDIATE: take the write lock up front rather than upgrading mid-transaction.
            using var tx = _writer.BeginTransaction(deferred: false);
            var result = await work(_writer, tx);
            tx.Commit();
            return result;
        }
        finally
        {
            _writeGate.Release();
        }
    }

    protected override async Task<T> ReadAsync<T>(Func<DbConnection, Task<T>> work, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        cancellationToken.ThrowIfCancellationRequested();
        await using var connection = Open();
        return await work(connection);
    }

    private SqliteConnection Open()
    {
        // Readers need no per-connection pragmas: in WAL mode they never wait for the writer, and
        // synchronous only matters to the one writer connection (set once above).
        var connection = new SqliteConnection(_connectionString);
        connection.Open();
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    protected override bool IsForeignKeyViolation(DbException e) =>
        e is SqliteException { SqliteExtendedErrorCode: 787 }; // SQLITE_CONSTRAINT_FOREIGNKEY

    protected override DbTransaction BeginSnapshot(DbConnection connection) =>
        ((SqliteConnection)connection).BeginTransaction(deferred: true);

    // The single writer already holds every lock a write could ask for.
    protected override Task LockAsync(DbConnection connection, DbTransaction tx, string name, CancellationToken cancellationToken) =>
        Task.CompletedTask;

    private protected override IReadOnlyList<Migration> Migrations => Schema.Sqlite;

    protected override string ContainsSql(string haystack, string needle) => $"instr({haystack}, {needle}) > 0";

    protected override string DayOfSql(string msColumn) => $"strftime('%Y-%m-%d', {msColumn} / 1000, 'unixepoch')";

    // One JSON parameter, however many values: no limit on the number of bound variables.
    protected override string InListSql(string column, string parameter) => $"{column} IN (SELECT value FROM json_each({parameter}))";

    protected override object ListParameter<T>(IReadOnlyCollection<T> values) => JsonSerializer.Serialize(values);
}
