namespace Loop.Grains;

using Loop.Store;
using Orleans.Runtime;

/// <summary>Orleans' reminders, kept in Loop's store (SQLite on one node, PostgreSQL in a cluster)
/// beside the tasks they keep armed. The table is created by Loop's migrations.</summary>
public sealed class StoreReminderTable(SqlLoopStore store) : IReminderTable
{
    public async Task<ReminderTableData> ReadRows(GrainId grainId) =>
        new((await store.ReadRemindersAsync(grainId.ToString(), CancellationToken.None)).Select(ToEntry));

    public async Task<ReminderTableData> ReadRows(uint begin, uint end) =>
        new((await store.ReadRemindersAsync(begin, end, CancellationToken.None)).Select(ToEntry));

    public async Task<ReminderEntry?> ReadRow(GrainId grainId, string reminderName) =>
        await store.ReadReminderAsync(grainId.ToString(), reminderName, CancellationToken.None) is { } row ? ToEntry(row) : null;

    public async Task<string?> UpsertRow(ReminderEntry entry) =>
        await store.UpsertReminderAsync(new ReminderRow(entry.GrainId.ToString(), entry.ReminderName, entry.GrainId.GetUniformHashCode(),
            new DateTimeOffset(DateTime.SpecifyKind(entry.StartAt, DateTimeKind.Utc)), (long)entry.Period.TotalMilliseconds, ""), CancellationToken.None);

    public Task<bool> RemoveRow(GrainId grainId, string reminderName, string eTag) =>
        store.RemoveReminderAsync(grainId.ToString(), reminderName, eTag, CancellationToken.None);

    public Task TestOnlyClearTable() => store.ClearRemindersAsync(CancellationToken.None);

    private static ReminderEntry ToEntry(ReminderRow row) => new()
    {
        GrainId = GrainId.Parse(row.GrainId),
        ReminderName = row.Name,
        StartAt = row.StartAt.UtcDateTime,
        Period = TimeSpan.FromMilliseconds(row.PeriodMs),
        ETag = row.ETag,
    };
}
