namespace Loop.Domain.Tests;

using System.Text.Json.Nodes;
using Loop.Domain.Channels;
using Loop.Domain.Runs;
using Loop.Runtime;
using Microsoft.Extensions.Logging.Abstractions;

/// <summary>What a chat's status message says about a run: its tool calls in words, the time, and how it ended.</summary>
public sealed class RunProgressTests
{
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    [Theory]
    [InlineData("Read", """{"file_path": "/home/me/app/src/app.ts"}""", "Reading `src/app.ts`")]
    [InlineData("Read", """{"file_path": "/etc/hosts"}""", "Reading `/etc/hosts`")]
    [InlineData("Write", """{"file_path": "/home/me/app/NOTES.md", "content": "x"}""", "Writing `NOTES.md`")]
    [InlineData("Edit", """{"file_path": "/home/me/app/src/x.ts", "old_string": "a", "new_string": "b"}""", "Editing `src/x.ts`")]
    [InlineData("MultiEdit", """{"file_path": "/home/me/app/src/y.ts", "edits": []}""", "Editing `src/y.ts`")]
    [InlineData("Bash", """{"command": "npm test", "description": "Run the tests"}""", "Running `npm test`")]
    [InlineData("Bash", """{"command": "git log\n--oneline | head"}""", "Running `git log --oneline | head`")]
    [InlineData("Grep", """{"pattern": "TODO"}""", "Searching for `TODO`")]
    [InlineData("Grep", """{"pattern": "TODO", "path": "/home/me/app/src"}""", "Searching for `TODO` in `src`")]
    [InlineData("Glob", """{"pattern": "**/*.ts"}""", "Finding files `**/*.ts`")]
    [InlineData("WebFetch", """{"url": "https://example.com", "prompt": "p"}""", "Fetching `https://example.com`")]
    [InlineData("WebSearch", """{"query": "orleans reminders"}""", "Searching the web for `orleans reminders`")]
    [InlineData("Task", """{"description": "Find the bug", "prompt": "p"}""", "Handing work to a subagent: `Find the bug`")]
    [InlineData("TodoWrite", """{"todos": []}""", "Updating its to-do list")]
    [InlineData("mcp__loop__schedule_task", """{"prompt": "p"}""", "Using `schedule_task` of `loop`")]
    [InlineData("SomethingNew", """{}""", "Using `SomethingNew`")]
    [InlineData("Read", """not json""", "Reading `…`")]
    public void A_tool_call_reads_as_what_the_agent_does(string tool, string input, string words) =>
        Assert.Equal(words, ToolCallWords.Describe(tool, input, "/home/me/app"));

    [Fact]
    public void What_the_agent_wrote_cannot_break_out_of_its_code_span_nor_run_long()
    {
        Assert.Equal("Running `echo 'hi' && rm x`", ToolCallWords.Describe("Bash", """{"command": "echo `hi` && rm x"}"""));
        var long_ = ToolCallWords.Describe("Bash", $$"""{"command": "{{new string('a', 200)}}"}""");
        Assert.Equal("Running `" + new string('a', 79) + "…`", long_);
    }

    [Theory]
    [InlineData(0, "0 s")]
    [InlineData(42, "42 s")]
    [InlineData(60, "1 min")]
    [InlineData(185, "3 min 5 s")]
    [InlineData(3600, "1 h")]
    [InlineData(3720, "1 h 2 min")]
    public void Elapsed_time_reads_in_the_largest_units(int seconds, string words) =>
        Assert.Equal(words, RunProgress.Elapsed(TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void The_status_lists_the_tool_calls_so_far_and_the_time_then_how_the_run_ended()
    {
        var progress = new RunProgress(Start, ChannelProgress.Tools, "/home/me/app");
        Assert.Equal("⏳ Working… 0 s · 0 tool calls", progress.Working(Start));

        Assert.True(progress.Feed(ToolUse("Read", new JsonObject { ["file_path"] = "/home/me/app/src/app.ts" })));
        Assert.False(progress.Feed(Text("Let me run the tests.")));
        Assert.True(progress.Feed(ToolUse("Bash", new JsonObject { ["command"] = "npm test" })));
        Assert.False(progress.Feed("""{"type":"user","message":{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"ok"}]}}"""));
        Assert.False(progress.Feed("not a stream-json line"));
        Assert.False(progress.Feed(Text("All 12 tests pass.")));

        Assert.Equal("⏳ Working… 14 s · 2 tool calls\n• Reading `src/app.ts`\n• Running `npm test`", progress.Working(Start.AddSeconds(14)));
        Assert.Equal("✅ Done in 42 s · 2 tool calls\n• Reading `src/app.ts`\n• Running `npm test`", progress.Ended(RunStatus.Succeeded, Start.AddSeconds(42)));
        Assert.StartsWith("⏹️ Stopped after 1 min 3 s · 2 tool calls", progress.Ended(RunStatus.Cancelled, Start.AddSeconds(63)));
        Assert.StartsWith("⌛ Ran out of time after 42 s", progress.Ended(RunStatus.TimedOut, Start.AddSeconds(42)));
        Assert.StartsWith("❌ Failed after 42 s", progress.Ended(RunStatus.Failed, Start.AddSeconds(42)));
    }

    [Fact]
    public void Verbose_shows_the_agents_remarks_between_tool_calls_but_never_its_answer()
    {
        var progress = new RunProgress(Start, ChannelProgress.Verbose);
        progress.Feed(Text("I'll look at the failing test first.\nIt is in src/app.test.ts."));
        progress.Feed(ToolUse("Read", new JsonObject { ["file_path"] = "src/app.test.ts" }));
        progress.Feed(Text(new string('x', 300)));
        progress.Feed(ToolUse("Bash", new JsonObject { ["command"] = "npm test" }));
        progress.Feed(Text("Fixed: the test expected UTC."));

        var status = progress.Ended(RunStatus.Succeeded, Start.AddSeconds(5));

        Assert.Equal(
            "✅ Done in 5 s · 2 tool calls\n• 💬 I'll look at the failing test first.\n• Reading `src/app.test.ts`\n• 💬 " + new string('x', 119) + "…\n• Running `npm test`",
            status);
        Assert.DoesNotContain("Fixed", status);
    }

    [Fact]
    public void A_long_run_shows_its_latest_steps_and_counts_the_earlier_ones()
    {
        var progress = new RunProgress(Start, ChannelProgress.Tools);
        for (var i = 1; i <= 30; i++)
        {
            progress.Feed(ToolUse("Read", new JsonObject { ["file_path"] = $"f{i}.ts" }));
        }

        var lines = progress.Working(Start.AddMinutes(2)).Split('\n');

        Assert.Equal("⏳ Working… 2 min · 30 tool calls", lines[0]);
        Assert.Equal("… 18 earlier steps", lines[1]);
        Assert.Equal(RunProgress.ShownSteps, lines.Length - 2);
        Assert.Equal("• Reading `f19.ts`", lines[2]);
        Assert.Equal("• Reading `f30.ts`", lines[^1]);
    }

    [Fact]
    public async Task The_status_is_shown_at_once_and_edited_with_news_no_sooner_than_two_seconds_after_the_last_edit()
    {
        var clock = new ManualTimeProvider(Start);
        var shows = new Shows(clock);
        var progress = new RunProgress(Start, ChannelProgress.Tools);
        var reporter = RunStatusReporter.Start("run_1", progress, new StatusPacer(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10)),
            shows.ShowAsync, clock, NullLogger.Instance, CancellationToken.None);
        await Eventually.Until(() => shows.Count == 1, "the status shown");
        Assert.Equal(Start, shows[0].At);

        reporter.Output(ToolUse("Read", new JsonObject { ["file_path"] = "src/app.ts" }));
        reporter.Output(ToolUse("Bash", new JsonObject { ["command"] = "npm test" }));
        await AdvanceUntilAsync(clock, () => shows.Count == 2, "an edit with the tool calls");

        Assert.True(shows[1].At >= Start.AddSeconds(2), $"edited at {shows[1].At:HH:mm:ss.fff}");
        Assert.Matches(@"^⏳ Working… \d s · 2 tool calls\n• Reading `src/app.ts`\n• Running `npm test`$", shows[1].View.Text);
        Assert.False(shows[1].View.Final);

        reporter.End(RunStatus.Succeeded, clock.GetUtcNow());
        await AdvanceUntilAsync(clock, () => reporter.Completion.IsCompleted, "the last edit");
        Assert.Equal(3, shows.Count);
        Assert.True(shows[2].View.Final);
        Assert.StartsWith("✅ Done in ", shows[2].View.Text);
        Assert.True(shows[2].At - shows[1].At >= TimeSpan.FromSeconds(2), "the last edit waited its turn too");
    }

    [Fact]
    public async Task However_fast_the_agent_works_edits_are_two_seconds_apart_and_the_last_one_comes()
    {
        var clock = new ManualTimeProvider(Start);
        var shows = new Shows(clock);
        var reporter = RunStatusReporter.Start("run_1", new RunProgress(Start, ChannelProgress.Tools), new StatusPacer(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10)),
            shows.ShowAsync, clock, NullLogger.Instance, CancellationToken.None);

        for (var i = 0; i < 150; i++)
        {
            reporter.Output(ToolUse("Read", new JsonObject { ["file_path"] = $"f{i}.ts" }));
            clock.Advance(TimeSpan.FromMilliseconds(100));
            await Task.Yield();
        }
        reporter.End(RunStatus.Succeeded, clock.GetUtcNow());
        await AdvanceUntilAsync(clock, () => reporter.Completion.IsCompleted, "the last edit");

        var all = shows.All;
        Assert.True(all.Count >= 2, $"only {all.Count} shows");
        Assert.All(all.Zip(all.Skip(1)), pair => Assert.True(pair.Second.At - pair.First.At >= TimeSpan.FromSeconds(2),
            $"edits at {pair.First.At:mm:ss.fff} and {pair.Second.At:mm:ss.fff}"));
        Assert.True(all[^1].View.Final);
        Assert.Contains("150 tool calls", all[^1].View.Text);
        Assert.All(all.SkipLast(1), show => Assert.False(show.View.Final));
    }

    [Fact]
    public async Task Without_news_the_clock_is_brought_up_to_date_every_ten_seconds()
    {
        var clock = new ManualTimeProvider(Start);
        var shows = new Shows(clock);
        var reporter = RunStatusReporter.Start("run_1", new RunProgress(Start, ChannelProgress.Tools), new StatusPacer(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10)),
            shows.ShowAsync, clock, NullLogger.Instance, CancellationToken.None);

        await AdvanceUntilAsync(clock, () => shows.Count == 3, "two clock edits");

        Assert.True(shows[1].At - shows[0].At >= TimeSpan.FromSeconds(10));
        Assert.True(shows[2].At - shows[1].At >= TimeSpan.FromSeconds(10));
        var elapsed = System.Text.RegularExpressions.Regex.Match(shows[2].View.Text, @"^⏳ Working… (\d+) s · 0 tool calls$");
        Assert.True(elapsed.Success, shows[2].View.Text);
        Assert.InRange(int.Parse(elapsed.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture), 20, 59);
        reporter.End(RunStatus.Cancelled, clock.GetUtcNow());
        await AdvanceUntilAsync(clock, () => reporter.Completion.IsCompleted, "the last edit");
        Assert.StartsWith("⏹️ Stopped after", shows.All[^1].View.Text);
    }

    [Fact]
    public async Task A_run_that_ends_before_an_edit_is_due_gets_its_last_edit_only()
    {
        var clock = new ManualTimeProvider(Start);
        var shows = new Shows(clock);
        var reporter = RunStatusReporter.Start("run_1", new RunProgress(Start, ChannelProgress.Tools), new StatusPacer(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10)),
            shows.ShowAsync, clock, NullLogger.Instance, CancellationToken.None);
        await Eventually.Until(() => shows.Count == 1, "the status shown");

        reporter.Output(ToolUse("Read", new JsonObject { ["file_path"] = "src/app.ts" }));
        reporter.End(RunStatus.Succeeded, Start.AddSeconds(1));
        await AdvanceUntilAsync(clock, () => reporter.Completion.IsCompleted, "the last edit");

        Assert.Equal(2, shows.Count);
        Assert.Equal("✅ Done in 1 s · 1 tool call\n• Reading `src/app.ts`", shows[1].View.Text);
        Assert.True(shows[1].At >= Start.AddSeconds(2));
    }

    [Fact]
    public async Task A_status_the_chat_refuses_is_given_up_and_the_reporter_ends()
    {
        var clock = new ManualTimeProvider(Start);
        var shows = new Shows(clock) { FailFrom = 2 };
        var reporter = RunStatusReporter.Start("run_1", new RunProgress(Start, ChannelProgress.Tools), new StatusPacer(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(10)),
            shows.ShowAsync, clock, NullLogger.Instance, CancellationToken.None);
        reporter.Output(ToolUse("Read", new JsonObject { ["file_path"] = "src/app.ts" }));

        await AdvanceUntilAsync(clock, () => reporter.Completion.IsCompleted, "the reporter to give up");

        Assert.Equal(2, shows.Attempts);
        reporter.End(RunStatus.Succeeded, clock.GetUtcNow());
        Assert.Equal(2, shows.Attempts);
    }

    /// <summary>Moves the clock on in small steps until the condition holds: the reporter's waits are
    /// timers of the clock, set whenever its task gets to them.</summary>
    private static Task AdvanceUntilAsync(ManualTimeProvider clock, Func<bool> condition, string what) =>
        Eventually.Until(() =>
        {
            if (condition())
            {
                return true;
            }
            clock.Advance(TimeSpan.FromMilliseconds(250));
            return condition();
        }, what);

    private static string ToolUse(string name, JsonObject input) => new JsonObject
    {
        ["type"] = "assistant",
        ["message"] = new JsonObject
        {
            ["role"] = "assistant",
            ["content"] = new JsonArray(new JsonObject { ["type"] = "tool_use", ["id"] = "toolu_" + Guid.NewGuid().ToString("N")[..8], ["name"] = name, ["input"] = input }),
        },
        ["session_id"] = "s",
    }.ToJsonString();

    private static string Text(string text) => new JsonObject
    {
        ["type"] = "assistant",
        ["message"] = new JsonObject { ["role"] = "assistant", ["content"] = new JsonArray(new JsonObject { ["type"] = "text", ["text"] = text }) },
        ["session_id"] = "s",
    }.ToJsonString();

    /// <summary>What the chat was shown, and when by the clock.</summary>
    private sealed class Shows(TimeProvider clock)
    {
        private readonly List<(DateTimeOffset At, StatusView View)> _shows = [];
        private int _attempts;

        /// <summary>From this attempt on (1-based), a show fails as a chat that refuses it would.</summary>
        public int FailFrom { get; init; } = int.MaxValue;

        public int Attempts => Volatile.Read(ref _attempts);

        public int Count
        {
            get { lock (_shows) { return _shows.Count; } }
        }

        public IReadOnlyList<(DateTimeOffset At, StatusView View)> All
        {
            get { lock (_shows) { return _shows.ToList(); } }
        }

        public (DateTimeOffset At, StatusView View) this[int index]
        {
            get { lock (_shows) { return _shows[index]; } }
        }

        public Task ShowAsync(StatusView view, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _attempts) >= FailFrom)
            {
                throw new InvalidOperationException("the chat refused the edit");
            }
            lock (_shows)
            {
                _shows.Add((clock.GetUtcNow(), view));
            }
            return Task.CompletedTask;
        }
    }
}
