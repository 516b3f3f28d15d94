"""Test harness: real throwaway servers and a runner for modules and playbooks through Ansible."""
