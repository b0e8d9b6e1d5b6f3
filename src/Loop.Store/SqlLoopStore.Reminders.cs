namespace Loop.Store;

using Dapper;

/// <summary>One reminder as Orleans keeps it: <see cref="GrainHash"/> is the grain id's uniform
/// hash, <see cref="StartAt"/> and <see cref="PeriodMs"/> its first tick and cadence.</summary>
public sealed record ReminderRow(string GrainId, string Name, uint GrainHash, DateTimeOffset StartAt, long PeriodMs, string ETag);

// The rows behind Orleans' reminder table, in the same database as the rest of the store, so a
// task and its reminder survive the same crash.
public abstract partial class SqlLoopStore
{
    private const string ReminderColumns = "grain_id AS GrainId, name AS Name, grain_hash AS GrainHash, start_at AS StartAt, period_ms AS PeriodMs, etag AS ETag";

    public Task<IReadOnlyList<ReminderRow>> ReadRemindersAsync(string grainId, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<ReminderRow>>(async connection =>
            (await connection.QueryAsync<ReminderDbRow>(Command($"SELECT {ReminderColumns} FROM orleans_reminders WHERE grain_id = @grainId",
                new { grainId }, null, cancellationToken))).Select(r => r.ToRow()).ToList(), cancellationToken);

    /// <summary>Reminders whose grain hash lies in Orleans' ring range (begin, end], which wraps
    /// around when begin is not below end.</summary>
    public Task<IReadOnlyList<ReminderRow>> ReadRemindersAsync(uint begin, uint end, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<ReminderRow>>(async connection =>
        {
            var where = begin < end ? "grain_hash > @begin AND grain_hash <= @end" : "grain_hash > @begin OR grain_hash <= @end";
            return (await connection.QueryAsync<ReminderDbRow>(Command($"SELECT {ReminderColumns} FROM orleans_reminders WHERE {where}",
                new { begin = (long)begin, end = (long)end }, null, cancellationToken))).Select(r => r.ToRow()).ToList();
        }, cancellationToken);

    public Task<ReminderRow?> ReadReminderAsync(string grainId, string name, CancellationToken cancellationToken) =>
        ReadAsync(async connection =>
            (await connection.QuerySingleOrDefaultAsync<ReminderDbRow>(Command(
                $"SELECT {ReminderColumns} FROM orleans_reminders WHERE grain_id = @grainId AND name = @name",
                new { grainId, name }, null, cancellationToken)))?.ToRow(), cancellationToken);

    /// <summary>Writes the reminder (new or replacing one of that name); returns its new etag.</summary>
    public Task<string> UpsertReminderAsync(ReminderRow row, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
        {
            var etag = Guid.NewGuid().ToString("N");
            await connection.ExecuteAsync(Command("""
                INSERT INTO orleans_reminders (grain_id, name, grain_hash, start_at, period_ms, etag)
                VALUES (@GrainId, @Name, @GrainHash, @StartAt, @PeriodMs, @etag)
                ON CONFLICT (grain_id, name) DO UPDATE SET
                    grain_hash = excluded.grain_hash, start_at = excluded.start_at, period_ms = excluded.period_ms, etag = excluded.etag
                """, new { row.GrainId, row.Name, GrainHash = (long)row.GrainHash, StartAt = Columns.ToMs(row.StartAt), row.PeriodMs, etag }, tx, cancellationToken));
            return etag;
        }, cancellationToken);

    /// <summary>Removes the reminder if it still has <paramref name="etag"/>; false when it changed or is gone.</summary>
    public Task<bool> RemoveReminderAsync(string grainId, string name, string etag, CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) =>
            await connection.ExecuteAsync(Command("DELETE FROM orleans_reminders WHERE grain_id = @grainId AND name = @name AND etag = @etag",
                new { grainId, name, etag }, tx, cancellationToken)) == 1, cancellationToken);

    public Task ClearRemindersAsync(CancellationToken cancellationToken) =>
        WriteAsync(async (connection, tx) => await connection.ExecuteAsync(Command("DELETE FROM orleans_reminders", null, tx, cancellationToken)), cancellationToken);

    private sealed record ReminderDbRow(string GrainId, string Name, long GrainHash, long StartAt, long PeriodMs, string ETag)
    {
        public ReminderRow ToRow() => new(GrainId, Name, (uint)GrainHash, Columns.FromMs(StartAt), PeriodMs, ETag);
    }
}
