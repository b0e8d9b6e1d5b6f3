namespace Loop.Store.Tests;

using Loop.Domain;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Xunit;

/// <summary>What several nodes writing tasks at once rely on: a slot is claimed by one claimer
/// whatever the number racing for it, a template is added once, and an edit based on an older
/// read is refused.</summary>
public abstract class TaskStoreTests(StoreBackend backend) : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;

    private readonly ManualTime _time = new(new DateTimeOffset(2025, 6, 1, 12, 0, 0, TimeSpan.Zero));
    private SqlLoopStore _store = null!;
    private Channel _channel = null!;

    public async Task InitializeAsync()
    {
        _store = await backend.OpenAsync(_time);
        _channel = (await _store.EnsureChannelAsync(null, null, None)).Channel;
    }

    public Task DisposeAsync() => backend.DisposeAsync().AsTask();

    [Fact]
    public async Task Claimers_racing_on_their_own_connections_fire_each_slot_once()
    {
        var due = _time.GetUtcNow().AddSeconds(1);
        var tasks = new List<ScheduledTask>();
        for (var i = 0; i < 200; i++)
        {
            tasks.Add((await _store.CreateTaskAsync(NewTask($"t{i}", due), None)).Task);
        }
        // Each claimer is a store object of its own, as each node has.
        var claimers = new List<SqlLoopStore>();
        for (var i = 0; i < 3; i++)
        {
            claimers.Add(await backend.OpenAsync(_time));
        }

        var claims = await Task.WhenAll(claimers.Select((claimer, c) => Task.Run(() => claimer.ClaimTaskFiringsAsync(
            tasks.Select(t => new TaskFiring(t.Id, t.Revision, due, due.AddHours(1), NewRun(t, due, $"run_{c}_{t.Id}"))).ToList(),
            _time.GetUtcNow(), None))));

        var claimed = claims.SelectMany(c => c).ToList();
        Assert.Equal(tasks.Select(t => t.Id).Order(), claimed.Select(f => f.TaskId).Order());
        foreach (var task in tasks)
        {
            var runs = await _store.ListRunsAsync(new RunQuery(10, TaskId: task.Id), None);
            Assert.Single(runs);
            var stored = await _store.GetTaskAsync(task.Id, None);
            Assert.Equal(due.AddHours(1), stored!.NextRunAt);
            Assert.Equal(task.Revision + 1, stored.Revision);
        }
    }

    [Fact]
    public async Task A_template_added_from_many_places_at_once_is_one_task()
    {
        var results = await Task.WhenAll(Enumerable.Range(0, 16).Select(i => Task.Run(async () =>
        {
            var store = await backend.OpenAsync(_time);
            return await store.CreateTaskAsync(NewTask($"nightly {i}", null) with { Template = "nightly-review" }, None);
        })));

        Assert.Single(results, r => r.Created);
        Assert.Single(results.Select(r => r.Task.Id).Distinct());
        Assert.Single(await _store.ListTasksAsync(_channel.Id, None));
    }

    [Fact]
    public async Task An_edit_of_an_older_read_is_stale_and_a_deleted_task_is_missing()
    {
        var task = (await _store.CreateTaskAsync(NewTask("report", _time.GetUtcNow().AddHours(1)), None)).Task;

        Assert.Equal(TaskWrite.Written, await _store.UpdateTaskAsync(task with { Prompt = "first edit" }, None));
        Assert.Equal(TaskWrite.Stale, await _store.UpdateTaskAsync(task with { Prompt = "edit of the old read" }, None));
        Assert.Equal("first edit", (await _store.GetTaskAsync(task.Id, None))!.Prompt);

        Assert.True(await _store.DeleteTaskAsync(task.Id, None));
        Assert.Equal(TaskWrite.Missing, await _store.UpdateTaskAsync(task, None));
    }

    private ScheduledTask NewTask(string name, DateTimeOffset? due)
    {
        _time.Advance(TimeSpan.FromMilliseconds(1)); // ids sort in creation order
        var now = _time.GetUtcNow();
        return new ScheduledTask(
            Ids.New("task", _time), _channel.Id, name, TaskType.Interval, "1h", null, "check the build",
            true, TaskContext.Isolated, MisfirePolicy.RunOnce, due, null, null, null,
            ScheduledTask.DefaultMaxIterations, ScheduledTask.DefaultCompletionPromise,
            0, LoopState.Idle, null, null, now, now);
    }

    private Run NewRun(ScheduledTask task, DateTimeOffset due, string id) =>
        new(id, _channel.Id, task.Id, RunStatus.Queued, task.Prompt, due,
            null, null, null, null, null, null, null, null, RunUsage.None);
}

public sealed class TaskStoreTestsOnSqlite() : TaskStoreTests(new SqliteBackend());

public sealed class TaskStoreTestsOnPostgres() : TaskStoreTests(new PostgresBackend());
