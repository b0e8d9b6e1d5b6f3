namespace Loop.Domain.Tests;

using Loop.Domain.Agents;

public sealed class RunUserPolicyTests
{
    private static readonly UnixUser Root = new(0, 0);
    private static readonly UnixUser Alice = new(1000, 1000);
    private static readonly UnixUser Bob = new(1001, 1002);
    private const string ConfigFile = "/root/.loop/config.json";

    [Fact]
    public void The_configured_container_user_wins_over_everything()
    {
        var policy = new RunUserPolicy(Root, Bob, ConfigFile);

        Assert.Equal(new RunUserChoice(Bob, null), policy.For("/srv/app", Alice));
        Assert.Equal(new RunUserChoice(Bob, null), policy.For("/srv/app", Root));
        Assert.Equal(new RunUserChoice(Bob, null), new RunUserPolicy(Alice, Bob, ConfigFile).For("/srv/app", Alice));
    }

    [Fact]
    public void A_daemon_that_is_not_root_runs_agents_as_itself_wherever_they_work()
    {
        var policy = new RunUserPolicy(Alice, null, ConfigFile);

        Assert.Equal(new RunUserChoice(Alice, null), policy.For("/srv/app", Bob));
        Assert.Equal(new RunUserChoice(Alice, null), policy.For("/srv/app", Root));
        Assert.Null(policy.RootWarning());
    }

    [Fact]
    public void A_root_daemon_runs_agents_as_the_owner_of_their_work_directory()
    {
        var policy = new RunUserPolicy(Root, null, ConfigFile);

        Assert.Equal(new RunUserChoice(Bob, null), policy.For("/srv/app", Bob));
    }

    [Fact]
    public void A_root_daemon_refuses_a_directory_that_root_owns_or_whose_owner_it_cannot_tell()
    {
        var policy = new RunUserPolicy(Root, null, ConfigFile);

        Assert.Equal(new RunUserChoice(null,
            "Loop runs as root and /srv/app belongs to root: agents never run as root; " +
            "set container_user in /root/.loop/config.json (like \"1000:1000\") and give that user the directory"),
            policy.For("/srv/app", Root));
        Assert.Null(policy.For("/srv/app", null).User);
        Assert.Contains("belongs to an owner Loop cannot tell", policy.For("/srv/app", null).Refusal);
    }

    [Fact]
    public void A_root_daemon_says_at_start_who_agents_run_as()
    {
        Assert.Equal("loop serve runs as root: agent containers run as container_user 1001:1002",
            new RunUserPolicy(Root, Bob, ConfigFile).RootWarning());
        Assert.StartsWith("loop serve runs as root: each agent container runs as the owner of its project directory",
            new RunUserPolicy(Root, null, ConfigFile).RootWarning());
    }

    [Theory]
    [InlineData("1000:1000", true, 1000u, 1000u)]
    [InlineData("0:0", true, 0u, 0u)]
    [InlineData("4294967295:1", true, 4294967295u, 1u)]
    [InlineData("1000", false, 0u, 0u)]
    [InlineData("alice:staff", false, 0u, 0u)]
    [InlineData("1000:1000:1", false, 0u, 0u)]
    [InlineData(" 1000:1000", false, 0u, 0u)]
    [InlineData("-1:5", false, 0u, 0u)]
    [InlineData("", false, 0u, 0u)]
    [InlineData(null, false, 0u, 0u)]
    public void A_user_is_numeric_uid_colon_gid(string? text, bool valid, uint uid, uint gid)
    {
        Assert.Equal(valid, UnixUser.TryParse(text, out var user));
        if (valid)
        {
            Assert.Equal(new UnixUser(uid, gid), user);
            Assert.Equal(text, user.ToString());
        }
    }
}
