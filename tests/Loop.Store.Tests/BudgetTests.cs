namespace Loop.Store.Tests;

using Loop.Domain;
using Loop.Domain.Budgets;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Loop.Domain.Tasks;
using Xunit;

/// <summary>Budgets in the store, and the guard that reads what was spent from the runs.</summary>
public abstract class BudgetTests(StoreBackend backend) : IAsyncLifetime
{
    private static readonly CancellationToken None = CancellationToken.None;
    private static readonly DateTimeOffset Now = new(2025, 6, 15, 10, 0, 0, TimeSpan.Zero);

    private static readonly PriceTable Prices = new(new Dictionary<string, ModelPrice>
    {
        ["claude-sonnet-4-5"] = new(3m, 15m, 3.75m, 0.30m),
    });

    private readonly ManualTime _time = new(Now);
    private SqlLoopStore _store = null!;
    private BudgetGuard _guard = null!;
    private Channel _chat = null!;
    private Channel _other = null!;

    public async Task InitializeAsync()
    {
        _store = await backend.OpenAsync(_time);
        _guard = new BudgetGuard(_store, Prices, _time);
        _chat = (await _store.EnsureExternalChannelAsync("discord", "900", "general", ChannelAgent.Default, None)).Channel;
        _other = (await _store.EnsureExternalChannelAsync("discord", "901", "random", ChannelAgent.Default, None)).Channel;
    }

    public Task DisposeAsync() => backend.DisposeAsync().AsTask();

    [Fact]
    public async Task Budgets_are_stored_read_in_the_order_asked_listed_and_removed_by_empty_limits()
    {
        var channel = new BudgetKey(BudgetScope.Channel, _chat.Id);
        var connector = new BudgetKey(BudgetScope.Connector, "discord");
        await _store.SetBudgetAsync(new Budget(connector, new BudgetLimits(null, 50m), Now), None);
        await _store.SetBudgetAsync(new Budget(channel, new BudgetLimits(5m, null), Now), None);
        await _store.SetBudgetAsync(new Budget(channel, new BudgetLimits(2.5m, 40.125m), Now), None);

        var read = await _store.GetBudgetsAsync([channel, new BudgetKey(BudgetScope.Task, "task_none"), connector], None);
        Assert.Equal([channel, connector], read.Select(b => b.Key));
        Assert.Equal(new BudgetLimits(2.5m, 40.125m), read[0].Limits);
        Assert.Equal(2, (await _store.ListBudgetsAsync(None)).Count);

        await _store.SetBudgetAsync(new Budget(channel, new BudgetLimits(null, null), Now), None);
        Assert.Equal([connector], (await _store.ListBudgetsAsync(None)).Select(b => b.Key));
    }

    [Fact]
    public async Task A_notice_is_claimed_once_whoever_asks_again()
    {
        var key = new BudgetKey(BudgetScope.Channel, _chat.Id);
        Assert.True(await _store.ClaimBudgetNoticeAsync(key, "daily:80:2025-06-15", Now, None));
        Assert.False(await _store.ClaimBudgetNoticeAsync(key, "daily:80:2025-06-15", Now, None));
        Assert.True(await _store.ClaimBudgetNoticeAsync(key, "daily:80:2025-06-16", Now, None));
        Assert.True(await _store.ClaimBudgetNoticeAsync(new BudgetKey(BudgetScope.Channel, _other.Id), "daily:80:2025-06-15", Now, None));
    }

    [Fact]
    public async Task A_spent_budget_refuses_the_run_until_it_resets_and_counts_only_its_own_scope_and_period()
    {
        await _store.SetBudgetAsync(new Budget(new BudgetKey(BudgetScope.Channel, _chat.Id), new BudgetLimits(1m, 10m), Now), None);
        await AddRunAsync(_chat.Id, Now.AddDays(-1), 5m); // yesterday: this month, not today
        await AddRunAsync(_chat.Id, Now.AddDays(-20), 100m); // last month
        await AddRunAsync(_other.Id, Now.AddMinutes(-5), 7m); // another channel
        await AddRunAsync(_chat.Id, Now.AddMinutes(-10), 0.4m);

        var allowed = await _guard.BeforeRunAsync(_chat, null, None);
        Assert.Null(allowed.Refusal);
        Assert.Equal(0.6m, allowed.MaxUsd); // the daily limit is nearer than the monthly one (10 - 5.4)

        // Token-only runs are priced: 200k input tokens at $3 per million is $0.60.
        await AddRunAsync(_chat.Id, Now.AddMinutes(-1), 0m, new RunUsage(200_000, 0, 0, 0, 0m, 1, 10));
        var refused = await _guard.BeforeRunAsync(_chat, null, None);
        Assert.Equal("Not run: the daily budget of channel general ($1.00) is spent ($1.00). It resets at 2025-06-16 00:00 UTC (in 14h); "
            + "raise it on the dashboard's Usage page or with /loop budget.", refused.Refusal);

        _time.Advance(TimeSpan.FromHours(14));
        var tomorrow = await _guard.BeforeRunAsync(_chat, null, None);
        Assert.Null(tomorrow.Refusal);
        Assert.Equal(1m, tomorrow.MaxUsd);
    }

    [Fact]
    public async Task A_run_counts_against_its_task_and_its_connector_and_the_least_left_is_its_limit()
    {
        var task = await AddTaskAsync(_chat.Id);
        await _store.SetBudgetAsync(new Budget(new BudgetKey(BudgetScope.Task, task.Id), new BudgetLimits(3m, null), Now), None);
        await _store.SetBudgetAsync(new Budget(new BudgetKey(BudgetScope.Connector, "discord"), new BudgetLimits(null, 2m), Now), None);
        await AddRunAsync(_chat.Id, Now.AddMinutes(-3), 0.5m, taskId: task.Id);
        await AddRunAsync(_other.Id, Now.AddMinutes(-2), 1m);

        // Task: 3 - 0.5 = 2.5 left; connector (both channels): 2 - 1.5 = 0.5 left.
        Assert.Equal(0.5m, (await _guard.BeforeRunAsync(_chat, task, None)).MaxUsd);
        await AddRunAsync(_other.Id, Now.AddMinutes(-1), 0.5m);
        var refused = await _guard.BeforeRunAsync(_chat, task, None);
        Assert.StartsWith("Task nightly paused: the monthly budget of connector discord ($2.00) is spent ($2.00). It resets at 2025-07-01 00:00 UTC", refused.Refusal);
    }

    [Fact]
    public async Task The_warning_at_80_percent_is_given_once_and_a_budget_spent_in_one_go_gets_no_warning_after()
    {
        var key = new BudgetKey(BudgetScope.Channel, _chat.Id);
        await _store.SetBudgetAsync(new Budget(key, new BudgetLimits(1m, 1.5m), Now), None);

        Assert.Empty(await _guard.AfterRunAsync(_chat, null, 0.5m, None));
        await AddRunAsync(_chat.Id, Now, 0.5m);
        var warning = Assert.Single(await _guard.AfterRunAsync(_chat, null, 0.3m, None));
        Assert.False(warning.Spent);
        Assert.Equal("80% of the daily budget of channel general is spent ($0.80 of $1.00); it resets at 2025-06-16 00:00 UTC.", warning.Text);
        await AddRunAsync(_chat.Id, Now, 0.3m);
        Assert.Empty(await _guard.AfterRunAsync(_chat, null, 0.1m, None));
        await AddRunAsync(_chat.Id, Now, 0.1m);

        // 0.9 + 0.4: the daily limit is spent, and the monthly one passes 80% (1.3 of 1.5).
        var notices = await _guard.AfterRunAsync(_chat, null, 0.4m, None);
        Assert.Equal([(BudgetPeriod.Day, true), (BudgetPeriod.Month, false)], notices.Select(n => (n.Period, n.Spent)));
        Assert.Equal("The daily budget of channel general ($1.00) is spent ($1.30). Until it resets at 2025-06-16 00:00 UTC, its messages are not run and its tasks pause.",
            notices[0].Text);
        Assert.Empty(await _guard.AfterRunAsync(_chat, null, 0.4m, None));
        await AddRunAsync(_chat.Id, Now, 0.4m);

        // The next day, spending the whole daily limit at once says so, and no 80% warning follows.
        _time.Advance(TimeSpan.FromDays(1));
        var spent = await _guard.AfterRunAsync(_chat, null, 1m, None);
        Assert.Equal([(BudgetPeriod.Day, true), (BudgetPeriod.Month, true)], spent.Select(n => (n.Period, n.Spent)));
        Assert.Empty(await _guard.AfterRunAsync(_chat, null, 0.85m, None));
    }

    [Fact]
    public async Task Deleting_a_task_or_a_channel_deletes_its_budget()
    {
        var task = await AddTaskAsync(_other.Id);
        await _store.SetBudgetAsync(new Budget(new BudgetKey(BudgetScope.Task, task.Id), new BudgetLimits(1m, null), Now), None);
        await _store.SetBudgetAsync(new Budget(new BudgetKey(BudgetScope.Channel, _chat.Id), new BudgetLimits(1m, null), Now), None);
        var second = await AddTaskAsync(_chat.Id);
        await _store.SetBudgetAsync(new Budget(new BudgetKey(BudgetScope.Task, second.Id), new BudgetLimits(1m, null), Now), None);

        Assert.True(await _store.DeleteTaskAsync(task.Id, None));
        Assert.True((await _store.DeleteChannelAsync(_chat.Id, None)).Deleted);

        Assert.Empty(await _store.ListBudgetsAsync(None));
    }

    private async Task AddRunAsync(string channelId, DateTimeOffset finishedAt, decimal cost, RunUsage? usage = null, string? taskId = null)
    {
        _time.Advance(TimeSpan.FromMilliseconds(1));
        var run = new Run(Ids.New("run", _time), channelId, taskId, RunStatus.Succeeded, "prompt", finishedAt.AddSeconds(-5),
            finishedAt.AddSeconds(-4), finishedAt, 0, "reply", null, null, "claude-sonnet-4-5-20250929", null,
            usage ?? new RunUsage(1, 1, 0, 0, cost, 1, 10));
        await _store.CreateRunAsync(run, [], None);
    }

    private async Task<ScheduledTask> AddTaskAsync(string channelId)
    {
        var now = _time.GetUtcNow();
        var task = new ScheduledTask(
            Ids.New("task", _time), channelId, "nightly", TaskType.Interval, "1h", null, "check",
            true, TaskContext.Isolated, MisfirePolicy.RunOnce, now.AddHours(1), null, null, null,
            ScheduledTask.DefaultMaxIterations, ScheduledTask.DefaultCompletionPromise,
            0, LoopState.Idle, null, null, now, now);
        return (await _store.CreateTaskAsync(task, None)).Task;
    }
}

public sealed class BudgetTestsOnSqlite() : BudgetTests(new SqliteBackend());

public sealed class BudgetTestsOnPostgres() : BudgetTests(new PostgresBackend());
