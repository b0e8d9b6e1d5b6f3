namespace Loop.Domain.Tests;

using Loop.Domain.Runs;
using Loop.Domain.Tasks;

public sealed class LoopTaskPolicyTests
{
    private static readonly DateTimeOffset At = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    private static ScheduledTask Task(int iteration, string? lastOutput = null, int max = 10) => new(
        "task_1", "ch_1", "loop", TaskType.Loop, "", "UTC", "improve the docs", true, TaskContext.Isolated, MisfirePolicy.RunOnce,
        null, null, null, null, max, "DONE", iteration, LoopState.Running, null, lastOutput, At, At);

    private static Run Ended(string? reply, RunStatus status = RunStatus.Succeeded) =>
        new("run_1", "ch_1", "task_1", status, "p", At, At, At, 0, reply, status == RunStatus.Succeeded ? null : "boom", null, null, null, RunUsage.None);

    [Fact]
    public void The_exact_promise_tag_completes_but_a_bare_mention_does_not()
    {
        Assert.Equal(LoopState.Completed, LoopTaskPolicy.After(Task(2), Ended("finished <promise>DONE</promise>")).State);
        Assert.Equal(LoopState.Running, LoopTaskPolicy.After(Task(2), Ended("I am DONE now")).State);
        Assert.Equal(LoopState.Running, LoopTaskPolicy.After(Task(2), Ended("<promise>done</promise>")).State);
    }

    [Theory]
    [InlineData("All tests pass.\n\n<promise>DONE</promise>\n")]
    [InlineData("All tests pass. <promise>DONE</promise>")]
    [InlineData("All tests pass.\r\n<promise>DONE</promise>  \r\n\r\n")]
    public void A_promise_stated_at_the_end_of_the_result_completes(string result) =>
        Assert.Equal(LoopState.Completed, LoopTaskPolicy.After(Task(2), Ended(result)).State);

    [Theory]
    [InlineData("You asked me to say <promise>DONE</promise> when the work is done. Two tests still fail.")]
    [InlineData("I will answer <promise>DONE</promise> once the tests pass.\nNext: fix the parser.")]
    [InlineData("The instruction:\n> When the work is completely done, end your answer with <promise>DONE</promise> as its last line\n\nNot yet.")]
    [InlineData("```\n<promise>DONE</promise>\n```")]
    public void A_promise_merely_quoted_or_planned_does_not_complete(string result) =>
        Assert.Equal(LoopState.Running, LoopTaskPolicy.After(Task(2), Ended(result)).State);

    [Fact]
    public void The_next_prompt_carries_the_previous_output_and_the_iteration()
    {
        var decision = LoopTaskPolicy.After(Task(1), Ended("drafted section 1"));
        Assert.Equal(LoopState.Running, decision.State);
        Assert.StartsWith("improve the docs", decision.NextPrompt);
        Assert.Contains("iteration 2 of at most 10", decision.NextPrompt);
        Assert.Contains("drafted section 1", decision.NextPrompt);
        Assert.Contains("<promise>DONE</promise>", decision.NextPrompt);
    }

    [Fact]
    public void Identical_output_twice_stops_for_no_progress()
    {
        var decision = LoopTaskPolicy.After(Task(3, lastOutput: "same\n"), Ended("same"));
        Assert.Equal(LoopState.Stopped, decision.State);
        Assert.Contains("no progress", decision.StopReason);
    }

    [Fact]
    public void The_limit_and_failures_stop_the_loop()
    {
        Assert.Contains("max_iterations", LoopTaskPolicy.After(Task(10), Ended("more")).StopReason);
        var failed = LoopTaskPolicy.After(Task(2), Ended(null, RunStatus.TimedOut));
        Assert.Equal(LoopState.Failed, failed.State);
        Assert.Contains("timed_out", failed.StopReason);
        Assert.Equal(LoopState.Stopped, LoopTaskPolicy.After(Task(2), Ended(null, RunStatus.Cancelled)).State);
    }
}
