"""Which container runtime runs container tasks here, and what it is asked to run: pure decisions."""

import pytest

from ferry.api import resource, taskpod
from ferry.execution import containers

PODMAN = containers.Runtime(name="podman", path="/usr/bin/podman", flavor="podman", rootless=False)
DOCKER = containers.Runtime(name="docker", path="/usr/bin/docker", flavor="docker", rootless=False)
ROOTLESS = containers.Runtime(name="podman", path="/usr/bin/podman", flavor="podman", rootless=True)


def plan(**fields) -> taskpod.PodPlan:
    return taskpod.PodPlan.model_validate({
        "workflow": "wf", "namespace": "local", "executionId": "wf-1a2b3c4d", "task": "boxed", "attempt": 2,
        "outputPrefix": "file:///raw/local/wf-1a2b3c4d/boxed/2", **fields})


def task(**fields) -> resource.Task:
    return resource.Task.model_validate({"name": "boxed", "image": "busybox:1.36", **fields})


def run(runtime=PODMAN, task_=None, plan_=None, host_ids=(0, 0), network="none") -> list[str]:
    return containers.run_command(runtime, task_ or task(), plan_ or plan(), name="ferry-wf-1a2b3c4d-boxed-2",
                                  inputs="/scratch/in", outputs="/scratch/out", network=network, host_ids=host_ids)


def test_the_first_runtime_that_answers_is_chosen():
    probes = [containers.Probe("podman", None, "not installed"),
              containers.Probe("docker", "/usr/bin/docker", None, rootless=True)]
    assert containers.choose(probes) == containers.Runtime("docker", "/usr/bin/docker", "docker", rootless=True)
    works = [containers.Probe("podman", "/usr/bin/podman", None), containers.Probe("docker", "/usr/bin/docker", None)]
    assert containers.choose(works).name == "podman"


def test_no_runtime_says_what_was_tried_and_what_to_do():
    probes = [containers.Probe("podman", None, "not installed"),
              containers.Probe("docker", "/usr/bin/docker", "`docker info` failed: Cannot connect to the Docker "
                                                            "daemon at unix:///var/run/docker.sock.")]
    assert containers.choose(probes) is None
    message = containers.unavailable(probes, overridden=False)
    assert message == ("no container runtime found (podman: not installed; docker: `docker info` failed: Cannot "
                       "connect to the Docker daemon at unix:///var/run/docker.sock.). Install podman or docker "
                       "(and start docker's daemon), or set FERRY_CONTAINER_RUNTIME to the one to use.")
    given = containers.unavailable([containers.Probe("/opt/podman", None, "no such program")], overridden=True)
    assert given.startswith("no container runtime found (FERRY_CONTAINER_RUNTIME=/opt/podman: no such program)")


@pytest.mark.parametrize(("program", "flavor"), [("podman", "podman"), ("/opt/bin/podman-remote", "podman"),
                                                 ("docker", "docker"), ("/usr/local/bin/nerdctl", "docker")])
def test_the_command_line_dialect_follows_the_program(program, flavor):
    assert containers.flavor(program) == flavor


def test_rootless_is_read_from_info():
    assert containers.parse_rootless("podman", "true\n") and not containers.parse_rootless("podman", "false\n")
    assert containers.parse_rootless("docker", '["name=seccomp,profile=builtin","name=rootless","name=cgroupns"]')
    assert not containers.parse_rootless("docker", '["name=seccomp,profile=builtin"]')
    assert not containers.parse_rootless("docker", "null")


def test_the_run_mirrors_the_pods_main_container():
    argv = run(task_=task(command=["sh", "-c"], args=["cat $FERRY_INPUT_NOTES"], env=[{"name": "MODE", "value": "x"}]),
               plan_=plan(values={"greeting": "hi", "n": 3},
                          inputs={"notes": {"kind": "file", "uri": "file:///raw/notes"}}))
    assert argv[:9] == ["/usr/bin/podman", "run", "--rm", "--name", "ferry-wf-1a2b3c4d-boxed-2", "--network", "none",
                        "--volume", "/scratch/in:/ferry/inputs:ro,Z"]
    assert argv[9:11] == ["--volume", "/scratch/out:/ferry/outputs:Z"]
    env = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--env"]
    assert env == ["MODE=x", "FERRY_INPUT_GREETING=/ferry/inputs/greeting", "FERRY_INPUT_N=/ferry/inputs/n",
                   "FERRY_INPUT_NOTES=/ferry/inputs/notes",
                   "FERRY_WORKFLOW=wf", "FERRY_TASK=boxed", "FERRY_ATTEMPT=2", "FERRY_INPUTS_DIR=/ferry/inputs",
                   "FERRY_OUTPUTS_DIR=/ferry/outputs"]
    assert argv[-5:] == ["--entrypoint", "sh", "busybox:1.36", "-c", "cat $FERRY_INPUT_NOTES"]


@pytest.mark.parametrize(("command", "args", "tail"), [
    (None, None, ["busybox:1.36"]),  # the image's entry point and arguments
    (None, ["echo", "hi"], ["busybox:1.36", "echo", "hi"]),  # the image's entry point, these arguments
    (["env"], None, ["--entrypoint", "env", "busybox:1.36"]),  # this command alone: the image's CMD goes too
    (["sh", "-c", "exit 3"], ["x"], ["--entrypoint", "sh", "busybox:1.36", "-c", "exit 3", "x"]),
    ([], None, ["busybox:1.36"]),  # an empty command is no command, as in a pod
])
def test_command_and_args_mean_what_they_mean_in_a_pod(command, args, tail):
    argv = run(task_=task(command=command, args=args))
    assert argv[-len(tail):] == tail and argv.count("--entrypoint") == ("--entrypoint" in tail)


def test_the_network_is_none_unless_asked():
    assert run()[5:7] == ["--network", "none"]
    assert run(network="host")[5:7] == ["--network", "host"]
    assert "--network" not in run(network="default"), "default: the runtime's own"


@pytest.mark.parametrize(("runtime", "host_ids", "user"), [
    (PODMAN, (0, 0), None),  # root: the image's own user, as in a pod; root reads what it writes
    (ROOTLESS, (1000, 1000), "0:0"),  # the container's root is this user: its files are ours
    (DOCKER, (1000, 1000), "1000:1000"),  # a daemon as root: run as us, or the outputs would be root's
    (DOCKER, None, None),  # no user ids here (Windows): the image's
])
def test_outputs_are_readable_by_whoever_runs_ferry(runtime, host_ids, user):
    argv = run(runtime=runtime, host_ids=host_ids)
    assert (argv[argv.index("--user") + 1] if "--user" in argv else None) == user


def test_the_tasks_own_user_and_privileges_are_kept():
    security = {"runAsUser": 1234, "runAsGroup": 5, "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}}
    argv = run(runtime=ROOTLESS, task_=task(securityContext=security), host_ids=(1000, 1000))
    assert argv[argv.index("--user") + 1] == "1234:5" and argv.count("--user") == 1
    assert {"--read-only", "--security-opt=no-new-privileges", "--cap-drop=ALL",
            "--cap-add=NET_BIND_SERVICE"} <= set(argv)
    only_user = run(task_=task(securityContext={"runAsUser": 7}))
    assert only_user[only_user.index("--user") + 1] == "7"


def test_stop_and_remove_name_the_container():
    assert containers.stop_command(DOCKER, "c", 5) == ["/usr/bin/docker", "stop", "-t", "5", "c"]
    assert containers.remove_command(PODMAN, "c") == ["/usr/bin/podman", "rm", "--force", "--ignore", "c"]
    assert containers.remove_command(DOCKER, "c") == ["/usr/bin/docker", "rm", "--force", "c"]


def test_container_names_are_unique_per_run_and_attempt():
    assert containers.container_name(plan()) == "ferry-wf-1a2b3c4d-boxed-2"
    long = containers.container_name(plan(executionId="w" * 63 + "-1a2b3c4d", task="t" * 63))
    assert len(long) <= containers.MAX_NAME and long.endswith("-2")
    assert long != containers.container_name(plan(executionId="w" * 63 + "-ffffffff", task="t" * 63))


@pytest.mark.parametrize(("code", "says"), [
    (3, "main container exited with code 3: line 1\nline 2"),
    (125, "main container exited with code 125 (podman could not run it): line 1\nline 2"),
    (127, "main container exited with code 127 (its command was not found): line 1\nline 2"),
    (137, "main container exited with code 137 (killed by SIGKILL; out of memory?): line 1\nline 2"),
])
def test_a_failed_container_says_its_exit_code_and_log_tail(code, says):
    assert containers.exit_message("podman", code, "line 1\nline 2\n") == says


def test_a_silent_failure_says_so():
    assert containers.exit_message("docker", 1, "") == "main container exited with code 1 and wrote nothing"


def test_a_long_log_keeps_its_end():
    message = containers.exit_message("podman", 2, "x" * 5000 + "the reason\n")
    assert message.endswith("the reason") and len(message) < 900
