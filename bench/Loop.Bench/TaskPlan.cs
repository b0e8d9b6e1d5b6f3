namespace Loop.Bench;

using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Loop.Hosting;
using Loop.Runtime;
using Microsoft.Data.Sqlite;

/// <summary>
/// A set of benchmark tasks "bench-{i}" whose due instants are known in advance: task i is due at
/// <see cref="Start"/> + i × <see cref="WindowSeconds"/> / <see cref="Tasks"/>, on channel i mod
/// <see cref="Channels"/>. Cron tasks are daily 6-field crons at that UTC second (due once in the next
/// 24 h, so each fires once in a run of the benchmark); once tasks are ISO instants to the millisecond.
/// Saved as JSON so that a later step can check the tasks an earlier step created.
/// </summary>
public sealed record TaskPlan(DateTimeOffset Start, double WindowSeconds, int Tasks, int Channels, string Types)
{
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>"cron", "once", or "mixed" (even i once, odd i cron).</summary>
    public string TypeOf(int i) => Types switch
    {
        "mixed" => i % 2 == 0 ? "once" : "cron",
        _ => Types,
    };

    public DateTimeOffset Due(int i)
    {
        var offset = (long)(WindowSeconds * TimeSpan.TicksPerSecond * i / Tasks);
        var ticks = Start.UtcTicks + offset;
        // Schedules have whole seconds (cron) or milliseconds (once, and the store).
        var unit = TypeOf(i) == "cron" ? TimeSpan.TicksPerSecond : TimeSpan.TicksPerMillisecond;
        return new DateTimeOffset(ticks - ticks % unit, TimeSpan.Zero);
    }

    public string Schedule(int i)
    {
        var due = Due(i).UtcDateTime;
        return TypeOf(i) == "cron"
            ? FormattableString.Invariant($"{due.Second} {due.Minute} {due.Hour} * * *")
            : due.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
    }

    public static DateTimeOffset NextWholeSecond(DateTimeOffset value) =>
        new(value.UtcTicks - value.UtcTicks % TimeSpan.TicksPerSecond + TimeSpan.TicksPerSecond, TimeSpan.Zero);

    public static int IndexOf(string name) => int.Parse(name.AsSpan("bench-".Length), CultureInfo.InvariantCulture);

    public void Save(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, Json));

    public static TaskPlan Load(string path) => JsonSerializer.Deserialize<TaskPlan>(File.ReadAllText(path), Json)
        ?? throw new BenchFailure($"{path} is empty");

    /// <summary>Makes the channels "bench-0".."bench-{n-1}" (idempotent: by name) and returns their ids.</summary>
    public async Task<List<string>> EnsureChannelsAsync(LoopHost node, CancellationToken cancellationToken)
    {
        var ids = new List<string>(Channels);
        for (var c = 0; c < Channels; c++)
        {
            ids.Add((await node.Channels.EnsureChannelAsync(Caller.User, null, $"bench-{c}", cancellationToken)).Channel.Id);
        }
        return ids;
    }

    /// <summary>Creates every task through the node's TaskService (validation, store insert, task
    /// armed), as POST /api/tasks does, one after another. Returns the seconds it took.</summary>
    public async Task<double> CreateAsync(LoopHost node, IReadOnlyList<string> channelIds, string id, CancellationToken cancellationToken)
    {
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < Tasks; i++)
        {
            var request = new NewTaskRequest(channelIds[i % channelIds.Count], TypeOf(i), Schedule(i), $"bench task {i}: say ok", Name: $"bench-{i}");
            await node.Tasks.CreateAsync(Caller.User, request, cancellationToken);
            if ((i + 1) % 20_000 == 0)
            {
                Console.Error.WriteLine($"[bench {id}] {i + 1} tasks created ({Stopwatch.GetElapsedTime(started).TotalSeconds:0.0} s)");
            }
        }
        return Stopwatch.GetElapsedTime(started).TotalSeconds;
    }

    /// <summary>Fails when the first slot is not far enough ahead any more (creation was slower than planned).</summary>
    public void EnsureAhead(TimeSpan margin, string what)
    {
        var left = Start - DateTimeOffset.UtcNow;
        if (left < margin)
        {
            throw new BenchFailure($"{what} ended {left.TotalSeconds:0.0} s before the first due instant (needs {margin.TotalSeconds:0} s): raise --lead");
        }
    }

    /// <summary>Per task (by index): runs recorded in the store, the earliest run's creation instant
    /// (unix ms) and how many of its runs succeeded. Read from loop.db after the node stopped.</summary>
    public static Dictionary<int, (int Runs, long? FirstStartMs, int Succeeded)> CountRuns(string database)
    {
        var counts = new Dictionary<int, (int, long?, int)>();
        using var connection = OpenReadOnly(database);
        using var command = connection.CreateCommand();
        command.CommandText = """
            SELECT t.name, COUNT(r.id), MIN(r.started_at), COALESCE(SUM(r.status = 'succeeded'), 0)
            FROM tasks t LEFT JOIN runs r ON r.task_id = t.id
            WHERE t.name LIKE 'bench-%'
            GROUP BY t.id
            """;
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            counts[IndexOf(reader.GetString(0))] = (reader.GetInt32(1), reader.IsDBNull(2) ? null : reader.GetInt64(2), reader.GetInt32(3));
        }
        return counts;
    }

    /// <summary>Runs not yet final (queued or running).</summary>
    /// <summary>Runs queued for (or started by) <paramref name="dueBy"/> that have not finished. Later
    /// ones are left out: the node keeps claiming slots ahead of their instant while it runs.</summary>
    public static long CountUnfinishedRuns(string database, DateTimeOffset dueBy)
    {
        using var connection = OpenReadOnly(database);
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT COUNT(*) FROM runs WHERE status IN ('queued', 'running') AND created_at <= @due_by";
        command.Parameters.AddWithValue("@due_by", dueBy.ToUnixTimeMilliseconds());
        return (long)command.ExecuteScalar()!;
    }

    private static SqliteConnection OpenReadOnly(string database)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = database, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }
}

/// <summary>This process's memory, from /proc/self/status.</summary>
public static class SelfMemory
{
    public static double RssMb() => StatusMb(Environment.ProcessId, "VmRSS:");

    public static double StatusMb(int pid, string field)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith(field, StringComparison.Ordinal))
            {
                return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) / 1024.0;
            }
        }
        throw new BenchFailure($"no {field} for pid {pid}");
    }
}
