namespace Loop.Claude.Tests;

using Xunit;

public sealed class ClaudeErrorsTests
{
    [Theory]
    [InlineData("No conversation found with session ID: 35814092-99b2-4a66-99e1-1dc2cbd7fc10\n", null)]
    [InlineData("some warning\nNo conversation found with session ID: abc\n", "")]
    [InlineData("", "No conversation found with session ID: abc")]
    public void Unknown_session_is_recognised(string stderr, string? result) =>
        Assert.True(ClaudeErrors.IsSessionNotFound(stderr, result));

    [Theory]
    [InlineData("error: unknown option '--bogus'", null)]
    [InlineData("", "API Error: 529 overloaded")]
    [InlineData(null, null)]
    public void Other_failures_are_not_taken_for_an_unknown_session(string? stderr, string? result) =>
        Assert.False(ClaudeErrors.IsSessionNotFound(stderr, result));
}
