namespace Loop.Store.Tests;

using Loop.Domain;
using Loop.Domain.Runs;
using Xunit;

public abstract class UsageTests(StoreBackend backend) : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly DateTimeOffset Day1 = new(2025, 6, 1, 10, 0, 0, TimeSpan.Zero);
    private static readonly DateTimeOffset Day2 = new(2025, 6, 2, 23, 59, 0, TimeSpan.Zero);
    private static readonly UsageQuery Everything = new(null, null, null);

    private static readonly PriceTable Prices = new(new Dictionary<string, ModelPrice>
    {
        ["claude-sonnet-4-5"] = new(3m, 15m, 3.75m, 0.30m),
        ["claude-haiku-4-5"] = new(1m, 5m, 1.25m, 0.10m),
    });

    private readonly ManualTime _time = new(Day1);
    private SqlLoopStore _store = null!;
    private string _alpha = "";
    private string _beta = "";

    public async Task InitializeAsync()
    {
        _store = await backend.OpenAsync(_time);
        _alpha = (await _store.EnsureChannelAsync(Path.Combine(backend.Root, "alpha"), null, None)).Channel.Id;
        _beta = (await _store.EnsureChannelAsync(Path.Combine(backend.Root, "beta"), null, None)).Channel.Id;
    }

    public Task DisposeAsync() => backend.DisposeAsync().AsTask();

    [Fact]
    public async Task Totals_sum_reported_costs_exactly_and_count_only_finished_runs()
    {
        await AddRunAsync(_alpha, Day1, "claude-sonnet-4-5", new RunUsage(10, 20, 30, 40, 0.1m, 1, 1000));
        await AddRunAsync(_alpha, Day1, "claude-sonnet-4-5", new RunUsage(1, 2, 3, 4, 0.2m, 2, 2000));
        await AddRunAsync(_beta, Day2, "claude-haiku-4-5", new RunUsage(100, 200, 0, 0, 1.23456789m, 3, 500), RunStatus.Failed);
        await AddRunAsync(_beta, Day2, "claude-haiku-4-5", new RunUsage(5, 5, 5, 5, 0.0042m, 1, 100), RunStatus.Running);
        await AddRunAsync(_beta, Day2, null, RunUsage.None, RunStatus.Queued);

        var totals = await _store.GetUsageTotalsAsync(Everything, Prices, None);

        // 0.1 + 0.2 is exactly 0.3 here, as money must be (in binary floating point it is not).
        Assert.Equal(new UsageTotals(3, 111, 222, 33, 44, 1.53456789m, 0m, 0, 6, 3500), totals);
    }

    [Fact]
    public async Task Runs_that_report_only_tokens_are_priced_from_the_table_by_model_prefix()
    {
        // 1M input at $3, 100k output at $15, 10k cache writes at $3.75, 200k cache reads at $0.30.
        await AddRunAsync(_alpha, Day1, "claude-sonnet-4-5-20250929", new RunUsage(1_000_000, 100_000, 10_000, 200_000, 0m, 1, 10));
        await AddRunAsync(_alpha, Day1, "claude-haiku-4-5", new RunUsage(1_000, 1_000, 0, 0, 0.5m, 1, 10));
        await AddRunAsync(_alpha, Day1, "some-other-model", new RunUsage(1_000, 1_000, 0, 0, 0m, 1, 10));
        await AddRunAsync(_alpha, Day1, null, RunUsage.None, RunStatus.Failed);

        var totals = await _store.GetUsageTotalsAsync(Everything, Prices, None);
        var calls = await _store.ListUsageCallsAsync(Everything, Prices, 10, null, None);

        Assert.Equal(4.5975m, totals.EstimatedCostUsd);
        Assert.Equal(5.0975m, totals.CostUsd);
        Assert.Equal(1, totals.UnpricedRuns);
        Assert.Equal(4, totals.Runs);
        Assert.Equal(
            [("some-other-model", 0m, false), ("claude-haiku-4-5", 0.5m, false), ("claude-sonnet-4-5-20250929", 4.5975m, true)],
            calls.Select(c => (c.Run.Model, c.CostUsd, c.CostEstimated)));
        Assert.Equal(0m, (await _store.GetUsageTotalsAsync(Everything, PriceTable.Empty, None)).EstimatedCostUsd);
    }

    [Fact]
    public async Task Usage_is_broken_down_by_day_model_channel_and_task()
    {
        var task = await AddTaskAsync(_beta);
        await AddRunAsync(_alpha, Day1, "claude-sonnet-4-5", new RunUsage(10, 10, 0, 0, 0.25m, 1, 100));
        await AddRunAsync(_alpha, Day2, "claude-haiku-4-5", new RunUsage(20, 20, 0, 0, 0.5m, 1, 100));
        await AddRunAsync(_beta, Day2, "claude-haiku-4-5", new RunUsage(30, 30, 0, 0, 0.125m, 1, 100), taskId: task);

        var days = await _store.GetUsageGroupsAsync(UsageGrouping.Day, Everything, Prices, None);
        var models = await _store.GetUsageGroupsAsync(UsageGrouping.Model, Everything, Prices, None);
        var channels = await _store.GetUsageGroupsAsync(UsageGrouping.Channel, Everything, Prices, None);
        var tasks = await _store.GetUsageGroupsAsync(UsageGrouping.Task, Everything, Prices, None);

        Assert.Equal([("2025-06-01", 1L, 0.25m), ("2025-06-02", 2L, 0.625m)], Summary(days));
        Assert.Equal([("claude-haiku-4-5", 2L, 0.625m), ("claude-sonnet-4-5", 1L, 0.25m)], Summary(models));
        Assert.Equal([(_alpha, 2L, 0.75m), (_beta, 1L, 0.125m)], Summary(channels));
        Assert.Equal([(null, 2L, 0.75m), (task, 1L, 0.125m)], Summary(tasks));
        Assert.Equal(30, tasks[1].Totals.InputTokens);
    }

    [Fact]
    public async Task A_time_range_and_a_channel_narrow_every_report()
    {
        await AddRunAsync(_alpha, Day1, "claude-sonnet-4-5", new RunUsage(10, 10, 0, 0, 0.25m, 1, 100));
        await AddRunAsync(_alpha, Day2, "claude-sonnet-4-5", new RunUsage(20, 20, 0, 0, 0.5m, 1, 100));
        await AddRunAsync(_beta, Day2, "claude-sonnet-4-5", new RunUsage(30, 30, 0, 0, 0.125m, 1, 100));
        var secondDay = new UsageQuery(Day2.Date, Day2.Date.AddDays(1), null);

        Assert.Equal(0.625m, (await _store.GetUsageTotalsAsync(secondDay, Prices, None)).CostUsd);
        Assert.Equal(0.25m, (await _store.GetUsageTotalsAsync(new UsageQuery(null, Day2.Date, null), Prices, None)).CostUsd);
        Assert.Equal(0.5m, (await _store.GetUsageTotalsAsync(secondDay with { ChannelId = _alpha }, Prices, None)).CostUsd);
        Assert.Equal([(_alpha, 1L, 0.5m), (_beta, 1L, 0.125m)],
            Summary(await _store.GetUsageGroupsAsync(UsageGrouping.Channel, secondDay, Prices, None)));
        Assert.Equal(2, (await _store.ListUsageCallsAsync(Everything with { ChannelId = _alpha }, Prices, 10, null, None)).Count);
        Assert.Equal(UsageTotals.Zero, await _store.GetUsageTotalsAsync(new UsageQuery(Day1.AddYears(1), null, null), Prices, None));
    }

    [Fact]
    public async Task Calls_are_the_runs_with_usage_newest_first_in_pages()
    {
        var ids = new List<string>();
        for (var i = 1; i <= 5; i++)
        {
            ids.Add(await AddRunAsync(_alpha, Day1.AddMinutes(i), "claude-sonnet-4-5", new RunUsage(i, i, 0, 0, i / 100m, 1, 10)));
            await AddRunAsync(_alpha, Day1.AddMinutes(i), null, RunUsage.None, RunStatus.Cancelled);
        }

        var first = await _store.ListUsageCallsAsync(Everything, Prices, 2, null, None);
        var second = await _store.ListUsageCallsAsync(Everything, Prices, 2, first[^1].Run.Id, None);
        var last = await _store.ListUsageCallsAsync(Everything, Prices, 2, second[^1].Run.Id, None);

        Assert.Equal([ids[4], ids[3]], first.Select(c => c.Run.Id));
        Assert.Equal([ids[2], ids[1]], second.Select(c => c.Run.Id));
        Assert.Equal([ids[0]], last.Select(c => c.Run.Id));
        Assert.Equal(0.05m, first[0].CostUsd);
        Assert.Equal(5, first[0].Run.Usage.InputTokens);
    }

    private static List<(string? Key, long Runs, decimal Cost)> Summary(IReadOnlyList<UsageGroup> groups) =>
        groups.Select(g => (g.Key, g.Totals.Runs, g.Totals.CostUsd)).ToList();

    private async Task<string> AddRunAsync(string channelId, DateTimeOffset finishedAt, string? model, RunUsage usage,
        RunStatus status = RunStatus.Succeeded, string? taskId = null)
    {
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var final = status.IsFinal();
        var run = new Run(Ids.New("run", _time), channelId, taskId, status, "prompt", finishedAt.AddSeconds(-5),
            finishedAt.AddSeconds(-4), final ? finishedAt : null, final ? 0 : null, final ? "reply" : null, null, null,
            model, null, usage);
        await _store.CreateRunAsync(run, [], None);
        return run.Id;
    }

    private async Task<string> AddTaskAsync(string channelId)
    {
        var now = _time.GetUtcNow();
        var task = new Loop.Domain.Tasks.ScheduledTask(
            Ids.New("task", _time), channelId, "nightly", Loop.Domain.Tasks.TaskType.Interval, "1h", null, "check",
            true, Loop.Domain.Tasks.TaskContext.Isolated, Loop.Domain.Tasks.MisfirePolicy.RunOnce, now.AddHours(1), null, null, null,
            Loop.Domain.Tasks.ScheduledTask.DefaultMaxIterations, Loop.Domain.Tasks.ScheduledTask.DefaultCompletionPromise,
            0, Loop.Domain.Tasks.LoopState.Idle, null, null, now, now);
        return (await _store.CreateTaskAsync(task, None)).Task.Id;
    }
}

public sealed class UsageTestsOnSqlite() : UsageTests(new SqliteBackend());

public sealed class UsageTestsOnPostgres() : UsageTests(new PostgresBackend());
