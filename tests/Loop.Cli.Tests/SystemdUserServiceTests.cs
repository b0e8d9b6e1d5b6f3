namespace Loop.Cli.Tests;

using Loop.Cli.ServiceManagers;

/// <summary>The systemctl steps, through a runner that plays systemctl: there is no user bus
/// on this machine or in CI, so the real one cannot be driven.</summary>
public sealed class SystemdUserServiceTests : IDisposable
{
    private readonly string _home = Directory.CreateTempSubdirectory("loop-systemd-").FullName;
    private readonly ScriptedSystemctl _systemctl = new();

    private static readonly ServiceDefinition Definition = new(["/usr/local/bin/loop", "serve"], new Dictionary<string, string> { ["LOOP_HOME"] = "/srv/loop" }, "/x.log");

    [Fact]
    public async Task Start_writes_the_unit_reloads_and_enables_it_now()
    {
        var service = new SystemdUserService(_home, _systemctl);

        Assert.Null(await service.UnavailableReasonAsync(CancellationToken.None));
        await service.InstallAndStartAsync(Definition, CancellationToken.None);

        var unitFile = Path.Combine(_home, ".config", "systemd", "user", "loop.service");
        Assert.Equal(unitFile, service.DefinitionFile);
        Assert.Equal(ServiceFiles.SystemdUnit(Definition), await File.ReadAllTextAsync(unitFile));
        Assert.Equal(["--user daemon-reload", "--user enable --now loop.service"], _systemctl.Changes);

        var state = await service.GetStateAsync(CancellationToken.None);
        Assert.True(state.Installed);
        Assert.True(state.Active);
        Assert.Equal(4242, state.Pid);
        Assert.Equal("active (running)", state.Detail);
    }

    [Fact]
    public async Task Start_when_already_running_restarts_so_a_new_unit_takes_effect()
    {
        var service = new SystemdUserService(_home, _systemctl);
        await service.InstallAndStartAsync(Definition, CancellationToken.None);
        _systemctl.Changes.Clear();

        await service.InstallAndStartAsync(Definition with { Command = ["/opt/loop", "serve"] }, CancellationToken.None);

        Assert.Equal(["--user daemon-reload", "--user enable --now loop.service", "--user restart loop.service"], _systemctl.Changes);
        Assert.Contains("ExecStart=\"/opt/loop\" \"serve\"", await File.ReadAllTextAsync(service.DefinitionFile));
    }

    [Fact]
    public async Task Stop_disables_and_removes_the_unit_and_a_second_stop_finds_nothing()
    {
        var service = new SystemdUserService(_home, _systemctl);
        await service.InstallAndStartAsync(Definition, CancellationToken.None);
        _systemctl.Changes.Clear();

        Assert.True(await service.StopAndRemoveAsync(CancellationToken.None));
        Assert.False(File.Exists(service.DefinitionFile));
        Assert.Equal(["--user disable --now loop.service", "--user daemon-reload"], _systemctl.Changes);

        Assert.False(await service.StopAndRemoveAsync(CancellationToken.None));
        var state = await service.GetStateAsync(CancellationToken.None);
        Assert.False(state.Installed);
        Assert.False(state.Active);
    }

    [Fact]
    public async Task Without_a_user_bus_it_is_unavailable_and_says_what_systemctl_said()
    {
        _systemctl.Bus = false;
        var service = new SystemdUserService(_home, _systemctl);

        var reason = await service.UnavailableReasonAsync(CancellationToken.None);

        Assert.Equal("systemd user services are not available here ('systemctl --user' says: Failed to connect to bus: No medium found)", reason);
    }

    [Fact]
    public async Task A_failing_step_is_reported_with_the_command_and_its_output()
    {
        _systemctl.FailEnable = true;
        var service = new SystemdUserService(_home, _systemctl);

        var error = await Assert.ThrowsAsync<ServiceManagerException>(() => service.InstallAndStartAsync(Definition, CancellationToken.None));

        Assert.Contains("'systemctl --user enable --now loop.service' failed (exit 1): Unit loop.service has a bad setting.", error.Message);
    }

    [Fact]
    public async Task The_real_systemctl_without_a_user_bus_is_unavailable()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable("DBUS_SESSION_BUS_ADDRESS") is { Length: > 0 })
        {
            return; // a desktop session has a user bus; this checks the machines that have none
        }

        var reason = await new SystemdUserService(_home, new ProcessCommandRunner()).UnavailableReasonAsync(CancellationToken.None);

        Assert.NotNull(reason);
    }

    public void Dispose() => Directory.Delete(_home, recursive: true);

    /// <summary>Answers like systemctl --user: the unit runs after enable --now, stops after disable --now.</summary>
    private sealed class ScriptedSystemctl : ICommandRunner
    {
        private bool _active;

        public bool Bus { get; set; } = true;
        public bool FailEnable { get; set; }
        public List<string> Changes { get; } = [];

        public Task<CommandResult> RunAsync(string program, IReadOnlyList<string> arguments, CancellationToken cancellationToken)
        {
            Assert.Equal("systemctl", program);
            var line = string.Join(' ', arguments);
            if (!Bus)
            {
                return Task.FromResult(new CommandResult(1, "Failed to connect to bus: No medium found"));
            }

            switch (line)
            {
                case "--user show-environment":
                    return Task.FromResult(new CommandResult(0, "HOME=/root"));
                case "--user show loop.service --property=ActiveState,SubState,MainPID":
                    return Task.FromResult(new CommandResult(0, _active ? "ActiveState=active\nSubState=running\nMainPID=4242" : "ActiveState=inactive\nSubState=dead\nMainPID=0"));
                case "--user enable --now loop.service" when FailEnable:
                    return Task.FromResult(new CommandResult(1, "Unit loop.service has a bad setting.\n"));
            }

            Changes.Add(line);
            _active = line switch
            {
                "--user enable --now loop.service" or "--user restart loop.service" => true,
                "--user disable --now loop.service" => false,
                _ => _active,
            };
            return Task.FromResult(new CommandResult(0, ""));
        }
    }
}
